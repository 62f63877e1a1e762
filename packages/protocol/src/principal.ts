/**
 * The principal map the gateway sends with every evaluation (CONTRACT section 2).
 * On the wire it is `map<string, string>`; these types name the documented keys.
 */
export type PrincipalMap = Readonly<Record<string, string>>;

export type UserAuthProvider = 'oidc' | 'mtls' | 'cloudflare_access' | 'local_dev';

export interface UserPrincipal {
  readonly kind: 'user';
  readonly subject: string;
  readonly display_name?: string;
  readonly provider?: UserAuthProvider | (string & {});
  /** Comma-joined role names. */
  readonly roles?: string;
  /** Comma-joined scopes. */
  readonly scopes?: string;
}

export interface SandboxPrincipal {
  readonly kind: 'sandbox';
  readonly sandbox_id: string;
  readonly source?: string;
  readonly trust_domain?: string;
}

export interface AnonymousPrincipal {
  readonly kind: 'anonymous';
}

export interface UnknownPrincipal {
  readonly kind: 'unknown';
}

/** A principal as a discriminated union on `kind`; other keys the gateway may add stay readable. */
export type Principal = (UserPrincipal | SandboxPrincipal | AnonymousPrincipal | UnknownPrincipal) &
  PrincipalMap;

export type PrincipalKind = Principal['kind'];

/**
 * Read a wire principal map. A missing or unrecognised `kind` reads as `unknown`
 * (the gateway sends `kind=unknown` when it has no principal).
 */
export function readPrincipal(map: PrincipalMap | undefined): Principal {
  const m = map ?? {};
  const kind = m.kind;
  if (kind === 'user' || kind === 'sandbox' || kind === 'anonymous') return { ...m, kind } as Principal;
  return { ...m, kind: 'unknown' } as Principal;
}

/** Split a comma-joined principal list (roles, scopes) into trimmed, non-empty names. */
export function principalList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The subject a log line or quota should use: user subject, sandbox id, or the kind. */
export function principalSubject(p: PrincipalMap): string {
  if (p.kind === 'user' && p.subject) return p.subject;
  if (p.kind === 'sandbox' && p.sandbox_id) return p.sandbox_id;
  return p.subject ?? p.kind ?? 'unknown';
}
