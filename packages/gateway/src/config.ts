import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import {
  DEFAULT_GATEWAY_ID,
  DEFAULT_TOKEN_TTL_SECONDS,
  defaultAudience,
  type FailurePolicy,
  findRoute,
  gatewayIssuer,
  isFailurePolicy,
  isPhase,
  MAX_TOKEN_TTL_SECONDS,
  type Phase,
  parseRpcSelector,
  RpcSelectorError,
} from '@openshell-interceptors/protocol';
import { parse as parseToml, TomlError } from 'smol-toml';

export type BindingPolicy = 'dynamic' | 'allowlist' | 'exact';

/** An RPC a binding (or a config entry) selects, always normalised to service + method. */
export interface Selector {
  readonly service: string;
  readonly method: string;
}

/** One `bindings = [...]` entry of an interceptor table. */
export interface BindingEntry {
  readonly id?: string;
  readonly selector?: Selector;
  readonly phases?: readonly Phase[];
  readonly disabled: boolean;
  readonly failurePolicy?: FailurePolicy;
  /** Position in the configured list (strict modes run in this order). */
  readonly index: number;
}

export type Endpoint =
  | { readonly kind: 'http' | 'https'; readonly authority: string; readonly target: string }
  | { readonly kind: 'unix'; readonly path: string; readonly target: string };

/** Ours: circuit breaker settings, one breaker per interceptor (opossum). */
export interface BreakerConfig {
  readonly enabled: boolean;
  /** Open when the failure percentage in the rolling window exceeds this. */
  readonly errorThresholdPercentage: number;
  /** Calls in the window before the breaker may open at all. */
  readonly volumeThreshold: number;
  /** How long the breaker stays open before a half-open probe. */
  readonly resetTimeoutMs: number;
  /** Length of the rolling statistics window. */
  readonly rollingWindowMs: number;
}

export interface InterceptorConfig {
  readonly name: string;
  readonly grpcEndpoint: string;
  readonly endpoint: Endpoint;
  /** Absolute path (resolved against the config file's directory). */
  readonly tlsCaCertPath?: string;
  readonly audience: string;
  readonly allowInsecureTransport: boolean;
  readonly order: number;
  readonly failurePolicy?: FailurePolicy;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly maxPatches: number;
  readonly bindingPolicy: BindingPolicy;
  readonly bindings: readonly BindingEntry[];
  // Ours: the layers of CONTRACT section 6.
  readonly maxConcurrency: number;
  readonly maxQueue: number;
  readonly breaker: BreakerConfig;
  readonly describeAttempts: number;
  readonly describeBackoffMs: number;
  /** Ours: the uid a unix socket must be owned by (default: this process's uid, or root). */
  readonly unixSocketUid?: number;
}

export type ProviderProfileSource =
  | { readonly type: 'builtin' }
  | { readonly type: 'user' }
  | { readonly type: 'interceptor'; readonly name: string };

export interface JwtSigningConfig {
  /** Absolute path of the Ed25519 private key (PKCS#8 PEM). */
  readonly privateKeyPath: string;
  readonly keyId: string;
  readonly ttlSeconds: number;
}

export interface GatewayConfig {
  readonly gatewayId: string;
  /** `openshell-gateway:<gateway_id>`. */
  readonly issuer: string;
  /** Absent: no token is ever attached (every interceptor must then allow insecure transport). */
  readonly jwt?: JwtSigningConfig;
  readonly providerProfileSources: readonly ProviderProfileSource[];
  /** In file order. */
  readonly interceptors: readonly InterceptorConfig[];
  /** File name, for messages. */
  readonly source?: string;
}

/** Documented defaults. The shipped ones first, then ours. */
export const DEFAULTS = {
  timeoutMs: 500,
  maxResponseBytes: 1_048_576,
  maxPatches: 32,
  order: 0,
  bindingPolicy: 'dynamic' as BindingPolicy,
  maxConcurrency: 64,
  maxQueue: 256,
  breaker: {
    enabled: true,
    errorThresholdPercentage: 50,
    volumeThreshold: 10,
    resetTimeoutMs: 5_000,
    rollingWindowMs: 10_000,
  } satisfies BreakerConfig,
  describeAttempts: 5,
  describeBackoffMs: 200,
} as const;

/** A configuration the gateway refuses: names the file, the interceptor, the key and the value. */
export class GatewayConfigError extends Error {
  constructor(
    message: string,
    readonly source?: string,
    readonly interceptor?: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'GatewayConfigError';
  }
}

type Table = Record<string, unknown>;

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return String(v);
  if (v === undefined) return '(missing)';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    // Too deeply nested for JSON.stringify; TOML tables have no prototype, so String() throws too.
    return Array.isArray(v)
      ? '(a deeply nested list)'
      : typeof v === 'object'
        ? '(a deeply nested table)'
        : '?';
  }
}

/** Where a key lives, for messages. */
class Ctx {
  constructor(
    readonly source: string | undefined,
    readonly where: string,
    readonly interceptor?: string,
  ) {}

  fail(key: string | undefined, value: unknown, problem: string): never {
    const file = this.source ? `${this.source}: ` : '';
    const at = key === undefined ? '' : ` key '${key}' = ${show(value)}:`;
    throw new GatewayConfigError(`${file}${this.where}:${at} ${problem}`, this.source, this.interceptor, key);
  }

  child(where: string): Ctx {
    return new Ctx(this.source, `${this.where} ${where}`, this.interceptor);
  }
}

const DURATION = /^([0-9]+)(ms|s)$/;

/** `<integer>ms` or `<integer>s`, nothing else; returns milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!Number.isSafeInteger(n)) return undefined;
  return m[2] === 's' ? n * 1000 : n;
}

function durationKey(ctx: Ctx, t: Table, key: string, def: number, min = 1): number {
  const v = t[key];
  if (v === undefined) return def;
  if (typeof v !== 'string') ctx.fail(key, v, 'expected a string "<integer>ms" or "<integer>s"');
  const ms = parseDuration(v);
  if (ms === undefined) ctx.fail(key, v, 'expected "<integer>ms" or "<integer>s", nothing else');
  if (ms < min) ctx.fail(key, v, `must be at least ${min}ms`);
  return ms;
}

function intKey(ctx: Ctx, t: Table, key: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER) {
  const v = t[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v)) ctx.fail(key, v, 'expected an integer');
  if (v < min || v > max)
    ctx.fail(key, v, max === Number.MAX_SAFE_INTEGER ? `must be >= ${min}` : `must be in ${min}..${max}`);
  return v;
}

function boolKey(ctx: Ctx, t: Table, key: string, def: boolean): boolean {
  const v = t[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') ctx.fail(key, v, 'expected true or false');
  return v;
}

function stringKey(ctx: Ctx, t: Table, key: string): string | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') ctx.fail(key, v, 'expected a string');
  return v;
}

function failurePolicyKey(ctx: Ctx, t: Table, key: string): FailurePolicy | undefined {
  const v = stringKey(ctx, t, key);
  if (v === undefined) return undefined;
  if (!isFailurePolicy(v)) ctx.fail(key, v, 'expected "fail_closed" or "fail_open"');
  return v;
}

function rejectUnknown(ctx: Ctx, t: Table, known: readonly string[]): void {
  for (const k of Object.keys(t)) {
    if (!known.includes(k)) ctx.fail(k, t[k], `unknown key (known keys: ${known.join(', ')})`);
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused.
const WS_OR_CONTROL = /[\s\u0000-\u001f\u007f-\u009f]/u;

function resolvePath(p: string, baseDir: string | undefined): string {
  return isAbsolute(p) ? p : resolve(baseDir ?? process.cwd(), p);
}

function parseEndpoint(ctx: Ctx, value: unknown): Endpoint {
  if (typeof value !== 'string' || value === '')
    ctx.fail('grpc_endpoint', value, 'required, a non-empty string');
  const m = /^(http|https|unix):\/\/(.*)$/.exec(value);
  if (!m)
    ctx.fail('grpc_endpoint', value, 'expected http://host:port, https://host:port or unix:///absolute/path');
  const scheme = m[1] as 'http' | 'https' | 'unix';
  const rest = m[2] ?? '';
  if (scheme === 'unix') {
    if (rest.startsWith('@') || rest.includes('\0'))
      ctx.fail('grpc_endpoint', value, 'abstract unix socket names are not allowed; use a filesystem socket');
    if (!rest.startsWith('/'))
      ctx.fail('grpc_endpoint', value, 'unix:// must be followed by an absolute path');
    if (rest.length === 1) ctx.fail('grpc_endpoint', value, 'unix:// path names no socket');
    return { kind: 'unix', path: rest, target: `unix://${rest}` };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.fail('grpc_endpoint', value, 'not a valid URL');
  }
  if (url.hostname === '') ctx.fail('grpc_endpoint', value, 'no host');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '')
    ctx.fail('grpc_endpoint', value, 'must be scheme://host[:port] with no path, query or fragment');
  if (url.username !== '' || url.password !== '')
    ctx.fail('grpc_endpoint', value, 'credentials in the URL are not allowed');
  const port = url.port === '' ? (scheme === 'https' ? '443' : '80') : url.port;
  const authority = `${url.hostname}:${port}`;
  return { kind: scheme, authority, target: authority };
}

function parseSelectorKeys(ctx: Ctx, t: Table): Selector | undefined {
  const rpc = stringKey(ctx, t, 'rpc');
  const service = stringKey(ctx, t, 'service');
  const method = stringKey(ctx, t, 'method');
  if (rpc !== undefined && (service !== undefined || method !== undefined))
    ctx.fail('rpc', rpc, 'set either rpc or service + method, not both');
  let sel: Selector;
  if (rpc !== undefined) {
    try {
      sel = parseRpcSelector(rpc);
    } catch (e) {
      if (e instanceof RpcSelectorError)
        ctx.fail('rpc', rpc, 'expected "service/method" with both parts non-empty');
      throw e;
    }
  } else if (service !== undefined || method !== undefined) {
    if (!service) ctx.fail('service', service, 'service and method must both be set and non-empty');
    if (!method) ctx.fail('method', method, 'service and method must both be set and non-empty');
    sel = { service, method };
  } else {
    return undefined;
  }
  if (!findRoute(sel.service, sel.method)) {
    ctx.fail(
      rpc !== undefined ? 'rpc' : 'method',
      rpc ?? sel.method,
      `${sel.service}/${sel.method} is not one of the 25 interceptable openshell.v1.OpenShell RPCs`,
    );
  }
  return sel;
}

const BINDING_KEYS = ['id', 'rpc', 'service', 'method', 'phases', 'disabled', 'failure_policy'] as const;

function parseBindingEntry(ctx: Ctx, v: unknown, index: number, policy: BindingPolicy): BindingEntry {
  const where: Ctx = ctx.child(`bindings[${index}]`);
  if (!isTable(v)) where.fail(undefined, v, 'each bindings entry must be a table');
  rejectUnknown(where, v, BINDING_KEYS);
  const id = stringKey(where, v, 'id');
  if (id !== undefined && id === '') where.fail('id', id, 'must be non-empty when set');
  const selector = parseSelectorKeys(where, v);
  let phases: Phase[] | undefined;
  if (v.phases !== undefined) {
    if (!Array.isArray(v.phases) || v.phases.length === 0)
      where.fail(
        'phases',
        v.phases,
        'expected a non-empty list of "modify_operation", "validate", "post_commit"',
      );
    phases = [];
    for (const p of v.phases) {
      if (typeof p !== 'string' || !isPhase(p))
        where.fail('phases', v.phases, `unknown phase ${show(p)} (modify_operation, validate, post_commit)`);
      if (phases.includes(p)) where.fail('phases', v.phases, `phase "${p}" listed twice`);
      phases.push(p);
    }
  }
  const disabled = boolKey(where, v, 'disabled', false);
  const failurePolicy = failurePolicyKey(where, v, 'failure_policy');
  if (policy === 'dynamic') {
    if (id === undefined && selector === undefined)
      where.fail(
        undefined,
        v,
        'a dynamic override needs an id or a selector (rpc, or service + method) to match',
      );
  } else {
    if (selector === undefined)
      where.fail(
        undefined,
        v,
        `binding_policy "${policy}" needs a selector (rpc, or service + method) on every entry`,
      );
    if (phases === undefined)
      where.fail('phases', undefined, `binding_policy "${policy}" needs phases on every entry`);
  }
  return {
    ...(id !== undefined ? { id } : {}),
    ...(selector ? { selector } : {}),
    ...(phases ? { phases } : {}),
    disabled,
    ...(failurePolicy ? { failurePolicy } : {}),
    index,
  };
}

const BREAKER_KEYS = [
  'enabled',
  'error_threshold_percentage',
  'volume_threshold',
  'reset_timeout',
  'rolling_window',
];

function parseBreaker(ctx: Ctx, v: unknown): BreakerConfig {
  if (v === undefined) return DEFAULTS.breaker;
  const where: Ctx = ctx.child('breaker');
  if (!isTable(v))
    ctx.fail('breaker', v, 'expected a table such as { enabled = true, reset_timeout = "5s" }');
  rejectUnknown(where, v, BREAKER_KEYS);
  const d = DEFAULTS.breaker;
  return {
    enabled: boolKey(where, v, 'enabled', d.enabled),
    errorThresholdPercentage: intKey(
      where,
      v,
      'error_threshold_percentage',
      d.errorThresholdPercentage,
      1,
      100,
    ),
    volumeThreshold: intKey(where, v, 'volume_threshold', d.volumeThreshold, 1),
    resetTimeoutMs: durationKey(where, v, 'reset_timeout', d.resetTimeoutMs),
    rollingWindowMs: durationKey(where, v, 'rolling_window', d.rollingWindowMs, 10),
  };
}

const INTERCEPTOR_KEYS = [
  'name',
  'grpc_endpoint',
  'tls_ca_cert_path',
  'audience',
  'allow_insecure_transport',
  'order',
  'failure_policy',
  'timeout',
  'max_response_bytes',
  'max_patches',
  'binding_policy',
  'bindings',
  // ours
  'max_concurrency',
  'max_queue',
  'breaker',
  'describe_attempts',
  'describe_backoff',
  'unix_socket_uid',
] as const;

function parseInterceptor(
  source: string | undefined,
  t: unknown,
  index: number,
  issuer: string,
  baseDir: string | undefined,
): InterceptorConfig {
  const anon: Ctx = new Ctx(source, `[[openshell.gateway.interceptors]] #${index + 1}`);
  if (!isTable(t)) anon.fail(undefined, t, 'expected a table');
  const rawName = t.name;
  if (typeof rawName !== 'string' || rawName.trim() === '')
    anon.fail('name', rawName, 'required, a non-empty string');
  const name = rawName;
  const ctx: Ctx = new Ctx(source, `interceptor '${name}'`, name);
  rejectUnknown(ctx, t, INTERCEPTOR_KEYS);
  const endpoint = parseEndpoint(ctx, t.grpc_endpoint);
  const ca = stringKey(ctx, t, 'tls_ca_cert_path');
  if (ca !== undefined) {
    if (endpoint.kind !== 'https')
      ctx.fail('tls_ca_cert_path', ca, 'only valid with an https:// grpc_endpoint');
    if (ca === '') ctx.fail('tls_ca_cert_path', ca, 'must be a non-empty path');
  }
  const audience = stringKey(ctx, t, 'audience') ?? defaultAudience(name);
  if (audience === '') ctx.fail('audience', audience, 'must be non-empty');
  if (WS_OR_CONTROL.test(audience))
    ctx.fail('audience', audience, 'must not contain whitespace or control characters');
  if (audience === issuer) ctx.fail('audience', audience, "must not be the gateway's own issuer");
  const order = intKey(ctx, t, 'order', DEFAULTS.order, Number.MIN_SAFE_INTEGER);
  const bindingPolicy = stringKey(ctx, t, 'binding_policy') ?? DEFAULTS.bindingPolicy;
  if (bindingPolicy !== 'dynamic' && bindingPolicy !== 'allowlist' && bindingPolicy !== 'exact')
    ctx.fail('binding_policy', bindingPolicy, 'expected "dynamic", "allowlist" or "exact"');
  const rawBindings = t.bindings ?? [];
  if (!Array.isArray(rawBindings)) ctx.fail('bindings', rawBindings, 'expected a list of tables');
  const bindings = rawBindings.map((b, i) => parseBindingEntry(ctx, b, i, bindingPolicy));
  const ids = new Set<string>();
  for (const b of bindings) {
    if (b.id === undefined) continue;
    if (ids.has(b.id)) ctx.fail('bindings', b.id, `binding id "${b.id}" configured twice`);
    ids.add(b.id);
  }
  const failurePolicy = failurePolicyKey(ctx, t, 'failure_policy');
  const unixSocketUid = t.unix_socket_uid === undefined ? undefined : intKey(ctx, t, 'unix_socket_uid', 0, 0);
  if (unixSocketUid !== undefined && endpoint.kind !== 'unix')
    ctx.fail('unix_socket_uid', unixSocketUid, 'only valid with a unix:// grpc_endpoint');
  return {
    name,
    grpcEndpoint: t.grpc_endpoint as string,
    endpoint,
    ...(ca !== undefined ? { tlsCaCertPath: resolvePath(ca, baseDir) } : {}),
    audience,
    allowInsecureTransport: boolKey(ctx, t, 'allow_insecure_transport', false),
    order,
    ...(failurePolicy ? { failurePolicy } : {}),
    timeoutMs: durationKey(ctx, t, 'timeout', DEFAULTS.timeoutMs),
    maxResponseBytes: intKey(ctx, t, 'max_response_bytes', DEFAULTS.maxResponseBytes, 1, 2 ** 31 - 1),
    maxPatches: intKey(ctx, t, 'max_patches', DEFAULTS.maxPatches, 0),
    bindingPolicy,
    bindings,
    maxConcurrency: intKey(ctx, t, 'max_concurrency', DEFAULTS.maxConcurrency, 1),
    maxQueue: intKey(ctx, t, 'max_queue', DEFAULTS.maxQueue, 0),
    breaker: parseBreaker(ctx, t.breaker),
    describeAttempts: intKey(ctx, t, 'describe_attempts', DEFAULTS.describeAttempts, 1, 20),
    describeBackoffMs: durationKey(ctx, t, 'describe_backoff', DEFAULTS.describeBackoffMs),
    ...(unixSocketUid !== undefined ? { unixSocketUid } : {}),
  };
}

const GATEWAY_KEYS = [
  'gateway_id',
  'jwt_private_key_path',
  'jwt_key_id',
  'jwt_ttl',
  'provider_profile_sources',
  'interceptors',
];

function parseSources(ctx: Ctx, v: unknown, names: Set<string>): ProviderProfileSource[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) ctx.fail('provider_profile_sources', v, 'expected a list of tables');
  const out: ProviderProfileSource[] = [];
  const seen = new Set<string>();
  v.forEach((s, i) => {
    const where: Ctx = ctx.child(`provider_profile_sources[${i}]`);
    if (!isTable(s)) where.fail(undefined, s, 'expected a table such as { type = "builtin" }');
    const type = s.type;
    let src: ProviderProfileSource;
    if (type === 'builtin' || type === 'user') {
      rejectUnknown(where, s, ['type']);
      src = { type };
    } else if (type === 'interceptor') {
      rejectUnknown(where, s, ['type', 'name']);
      const name = s.name;
      if (typeof name !== 'string' || name === '')
        where.fail('name', name, 'an interceptor source needs a name');
      if (!names.has(name)) where.fail('name', name, `no interceptor named '${name}' is configured`);
      src = { type, name };
    } else {
      where.fail('type', type, 'expected "builtin", "user" or "interceptor"');
    }
    const key = src.type === 'interceptor' ? `interceptor:${src.name}` : src.type;
    if (seen.has(key)) where.fail(undefined, s, 'source listed twice');
    seen.add(key);
    out.push(src);
  });
  return out;
}

/**
 * Parse a gateway TOML document: `[openshell.gateway]` and its
 * `[[openshell.gateway.interceptors]]` tables, with every rule of CONTRACT section 5.
 * Relative paths resolve against `baseDir` (the config file's directory).
 */
export function parseGatewayConfig(
  tomlText: string,
  opts: { source?: string; baseDir?: string } = {},
): GatewayConfig {
  const { source } = opts;
  const top: Ctx = new Ctx(source, 'gateway config');
  let doc: Table;
  try {
    doc = parseToml(tomlText) as Table;
  } catch (e) {
    if (e instanceof TomlError) {
      throw new GatewayConfigError(
        `${source ? `${source}: ` : ''}invalid TOML at line ${e.line}, column ${e.column}: ${e.message.split('\n')[0]}`,
        source,
      );
    }
    throw e;
  }
  for (const k of Object.keys(doc))
    if (k !== 'openshell') top.fail(k, doc[k], 'unknown table; expected [openshell.gateway]');
  const openshell = doc.openshell;
  if (!isTable(openshell)) top.fail('openshell', openshell, 'expected the [openshell.gateway] table');
  for (const k of Object.keys(openshell))
    if (k !== 'gateway')
      top.fail(`openshell.${k}`, openshell[k], 'unknown table; expected [openshell.gateway]');
  const gw = openshell.gateway;
  if (!isTable(gw)) top.fail('openshell.gateway', gw, 'expected a table');
  return gatewayConfigFromObject(gw, opts);
}

/**
 * The same rules as `parseGatewayConfig`, for the contents of `[openshell.gateway]` given as
 * a plain object with the TOML key names (`{ gateway_id, interceptors: [{ name, grpc_endpoint, … }] }`).
 * For harnesses that build a configuration in code.
 */
export function gatewayConfigFromObject(
  gw: Record<string, unknown>,
  opts: { source?: string; baseDir?: string } = {},
): GatewayConfig {
  const { source, baseDir } = opts;
  const ctx: Ctx = new Ctx(source, '[openshell.gateway]');
  if (!isTable(gw)) ctx.fail(undefined, gw, 'expected a table');
  rejectUnknown(ctx, gw, GATEWAY_KEYS);

  const gatewayId = stringKey(ctx, gw, 'gateway_id') ?? DEFAULT_GATEWAY_ID;
  if (gatewayId === '' || WS_OR_CONTROL.test(gatewayId))
    ctx.fail('gateway_id', gatewayId, 'must be non-empty, without whitespace or control characters');
  const issuer = gatewayIssuer(gatewayId);

  const keyPath = stringKey(ctx, gw, 'jwt_private_key_path');
  const keyId = stringKey(ctx, gw, 'jwt_key_id');
  const ttlText = stringKey(ctx, gw, 'jwt_ttl');
  let jwt: JwtSigningConfig | undefined;
  if (keyPath !== undefined) {
    if (keyPath === '') ctx.fail('jwt_private_key_path', keyPath, 'must be a non-empty path');
    if (keyId === undefined || keyId === '' || WS_OR_CONTROL.test(keyId))
      ctx.fail(
        'jwt_key_id',
        keyId,
        'required with jwt_private_key_path: a non-empty key id without whitespace',
      );
    let ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS;
    if (ttlText !== undefined) {
      const ms = parseDuration(ttlText);
      if (ms === undefined) ctx.fail('jwt_ttl', ttlText, 'expected "<integer>s" or "<integer>ms"');
      if (ms % 1000 !== 0 || ms === 0)
        ctx.fail('jwt_ttl', ttlText, 'must be a positive whole number of seconds');
      ttlSeconds = ms / 1000;
      if (ttlSeconds > MAX_TOKEN_TTL_SECONDS)
        ctx.fail(
          'jwt_ttl',
          ttlText,
          `must not exceed ${MAX_TOKEN_TTL_SECONDS}s (services refuse longer tokens)`,
        );
    }
    jwt = { privateKeyPath: resolvePath(keyPath, baseDir), keyId, ttlSeconds };
  } else {
    if (keyId !== undefined) ctx.fail('jwt_key_id', keyId, 'set jwt_private_key_path too, or remove it');
    if (ttlText !== undefined) ctx.fail('jwt_ttl', ttlText, 'set jwt_private_key_path too, or remove it');
  }

  const rawInterceptors = gw.interceptors ?? [];
  if (!Array.isArray(rawInterceptors))
    ctx.fail('interceptors', rawInterceptors, 'expected [[openshell.gateway.interceptors]] tables');
  const interceptors = rawInterceptors.map((t, i) => parseInterceptor(source, t, i, issuer, baseDir));
  const names = new Set<string>();
  for (const ic of interceptors) {
    if (names.has(ic.name))
      new Ctx(source, `interceptor '${ic.name}'`, ic.name).fail(
        'name',
        ic.name,
        'interceptor names must be unique',
      );
    names.add(ic.name);
  }
  const providerProfileSources = parseSources(ctx, gw.provider_profile_sources, names);
  return {
    gatewayId,
    issuer,
    ...(jwt ? { jwt } : {}),
    providerProfileSources,
    interceptors,
    ...(source !== undefined ? { source } : {}),
  };
}

/** Read and parse a gateway TOML file; relative paths resolve against its directory. */
export async function loadGatewayConfig(path: string): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new GatewayConfigError(`${path}: cannot read the gateway config: ${(e as Error).message}`, path);
  }
  return parseGatewayConfig(text, { source: path, baseDir: dirname(resolve(path)) });
}
