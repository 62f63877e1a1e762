import {
  type DenialCodeName,
  formatJsonPointer,
  type JsonValue,
  parseJsonPointer,
} from '@openshell-interceptors/protocol';

/** Log annotations: non-secret strings the gateway logs and never shows the API caller. */
export type Annotations = Readonly<Record<string, string>>;

/** The six RFC 6902 operations. */
export type PatchOp = 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';

/** One RFC 6902 operation; `path`/`from` are JSON Pointers into the operation view. */
export interface Patch {
  readonly op: PatchOp;
  readonly path: string;
  readonly value?: JsonValue;
  readonly from?: string;
}

/** A location: a JSON Pointer string, or raw path segments (escaped for you). */
export type PathInput = string | readonly (string | number)[];

/** Let the operation through (modify: with the draft diff and any explicit patches). */
export interface AllowDecision {
  readonly decision: 'allow';
  readonly annotations?: Annotations;
  /** Explicit patches (modify only), applied after the draft diff. */
  readonly patches?: readonly Patch[];
}

/** Refuse the operation: the API caller gets `code` and `reason`. */
export interface DenyDecision {
  readonly decision: 'deny';
  readonly code: DenialCodeName;
  readonly reason: string;
  readonly annotations?: Annotations;
}

export type Decision = AllowDecision | DenyDecision;

export interface AllowOptions {
  readonly annotations?: Annotations;
  readonly patches?: readonly Patch[];
}

/** Allow the operation. */
export function allow(opts: AllowOptions = {}): AllowDecision {
  return {
    decision: 'allow',
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
    ...(opts.patches ? { patches: opts.patches } : {}),
  };
}

/**
 * Deny the operation with a gRPC status code and a reason the API caller reads:
 * say what to change, not only what is wrong. A denial is never a failure, so the
 * gateway's failure policy does not apply to it.
 */
export function deny(
  code: DenialCodeName,
  reason: string,
  opts: { readonly annotations?: Annotations } = {},
): DenyDecision {
  return { decision: 'deny', code, reason, ...(opts.annotations ? { annotations: opts.annotations } : {}) };
}

/** A path as a JSON Pointer: segments are escaped (`~` → `~0`, `/` → `~1`); a string is checked. */
export function pointer(path: PathInput): string {
  if (typeof path === 'string') {
    parseJsonPointer(path);
    return path;
  }
  return formatJsonPointer(path);
}

/**
 * Explicit patch builders. Paths are JSON Pointer strings or segment arrays:
 * `patch.add(['labels', 'team/owner'], 'a')` yields path `/labels/team~1owner`.
 * A field absent from the view must be set with `add` (the gateway refuses
 * `replace` of a missing member).
 */
export const patch = {
  add: (path: PathInput, value: JsonValue): Patch => ({ op: 'add', path: pointer(path), value }),
  replace: (path: PathInput, value: JsonValue): Patch => ({ op: 'replace', path: pointer(path), value }),
  remove: (path: PathInput): Patch => ({ op: 'remove', path: pointer(path) }),
  move: (from: PathInput, path: PathInput): Patch => ({
    op: 'move',
    from: pointer(from),
    path: pointer(path),
  }),
  copy: (from: PathInput, path: PathInput): Patch => ({
    op: 'copy',
    from: pointer(from),
    path: pointer(path),
  }),
  test: (path: PathInput, value: JsonValue): Patch => ({ op: 'test', path: pointer(path), value }),
} as const;
