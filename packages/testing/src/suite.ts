import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BindingPolicy, EvaluationRecord } from '@openshell-interceptors/gateway';
import {
  type DenialCodeName,
  type FailurePolicy,
  type GrpcCodeName,
  type InterceptableMethod,
  isFailurePolicy,
  isGrpcCodeName,
  isPhase,
  type JsonObject,
  type Phase,
  type PrincipalMap,
  parseJsonPointer,
  RpcSelectorError,
  resolveRoute,
} from '@openshell-interceptors/protocol';
import type { Interceptor } from '@openshell-interceptors/sdk';
import { isDocument, parseAllDocuments } from 'yaml';
import { type Fault, faults, withFaults } from './faults.js';
import { principals, requestFixture } from './fixtures.js';
import {
  type CallResult,
  type TestBindingEntry,
  type TestBreakerSettings,
  type TestGateway,
  type TestGatewayInterceptor,
  type TestInterceptorSettings,
  type TestTransport,
  testGateway,
} from './gateway.js';
import { describeEvaluations } from './matchers.js';

export const SUITE_API_VERSION = 'openshell-interceptors/v1alpha1';
export const SUITE_KIND = 'InterceptorTestSuite';

/** A suite file the runner refuses: names the file and the key. */
export class SuiteError extends Error {
  constructor(
    readonly file: string,
    readonly key: string | undefined,
    problem: string,
  ) {
    super(`${file}: ${key ? `${key}: ` : ''}${problem}`);
    this.name = 'SuiteError';
  }
}

export interface SuiteInterceptorSpec {
  readonly settings: TestInterceptorSettings;
  /** Absolute module path, or undefined for an endpoint. */
  readonly module?: string;
  readonly export: string;
  readonly endpoint?: string;
  readonly name?: string;
  readonly tlsCaCertPath?: string;
  readonly faults: readonly Fault[];
}

export interface EvaluationExpectation {
  readonly interceptor?: string;
  readonly binding?: string;
  readonly phase?: Phase;
  readonly decision?: EvaluationRecord['decision'];
  readonly layer?: string;
  readonly failurePolicy?: FailurePolicy;
  readonly applied?: boolean;
}

export interface CaseExpectation {
  readonly outcome?: 'allowed' | 'denied';
  readonly code?: GrpcCodeName;
  readonly reason?: string;
  readonly reasonMatches?: RegExp;
  readonly operation?: JsonObject;
  readonly patched?: Readonly<Record<string, unknown>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly evaluations?: readonly EvaluationExpectation[];
}

export interface SuiteCase {
  readonly name: string;
  readonly method: InterceptableMethod;
  readonly principal: PrincipalMap;
  readonly request: JsonObject;
  readonly response?: JsonObject;
  readonly commit: boolean;
  readonly expect: CaseExpectation;
}

export interface SuiteSpec {
  readonly file: string;
  readonly name: string;
  readonly transport: TestTransport;
  readonly auth: boolean;
  readonly gatewayId?: string;
  readonly signingKey?: { readonly privateKeyPath: string; readonly keyId: string };
  readonly interceptors: readonly SuiteInterceptorSpec[];
  readonly cases: readonly SuiteCase[];
}

export interface CaseResult {
  readonly name: string;
  readonly rpc: InterceptableMethod;
  readonly passed: boolean;
  /** Each failed expectation, in words. */
  readonly failures: readonly string[];
  readonly outcome: 'allowed' | 'denied';
  readonly status: CallResult['status'];
  readonly durationMs: number;
  /** The evaluations, one line each (for reports). */
  readonly evaluations: string;
}

export interface SuiteResult {
  readonly file: string;
  readonly name: string;
  readonly passed: boolean;
  readonly cases: readonly CaseResult[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads keys of one YAML mapping, refusing unknown ones, with the path for messages. */
class At {
  constructor(
    readonly file: string,
    readonly path: string,
  ) {}

  fail(problem: string, key?: string): never {
    throw new SuiteError(this.file, key === undefined ? this.path || undefined : this.key(key), problem);
  }

  key(k: string): string {
    return this.path === '' ? k : `${this.path}.${k}`;
  }

  child(k: string): At {
    return new At(this.file, this.key(k));
  }

  index(i: number): At {
    return new At(this.file, `${this.path}[${i}]`);
  }

  map(v: unknown, known: readonly string[]): Obj {
    if (!isObj(v)) this.fail(`expected a mapping, got ${JSON.stringify(v)}`);
    for (const k of Object.keys(v))
      if (!known.includes(k)) this.fail(`unknown key (known keys: ${known.join(', ')})`, k);
    return v;
  }

  string(o: Obj, k: string, required = false): string | undefined {
    const v = o[k];
    if (v === undefined || v === null) {
      if (required) this.fail('required', k);
      return undefined;
    }
    if (typeof v !== 'string' || v === '')
      this.fail(`expected a non-empty string, got ${JSON.stringify(v)}`, k);
    return v;
  }

  int(o: Obj, k: string, min = 0): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      this.fail(`expected an integer >= ${min}, got ${JSON.stringify(v)}`, k);
    return v;
  }

  bool(o: Obj, k: string): boolean | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(`expected true or false, got ${JSON.stringify(v)}`, k);
    return v;
  }

  duration(o: Obj, k: string): string | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || !/^[0-9]+(ms|s)$/.test(v))
      this.fail(`expected "<integer>ms" or "<integer>s", got ${JSON.stringify(v)}`, k);
    return v;
  }

  policy(o: Obj, k: string): FailurePolicy | undefined {
    const v = this.string(o, k);
    if (v !== undefined && !isFailurePolicy(v)) this.fail(`expected fail_closed or fail_open, got "${v}"`, k);
    return v as FailurePolicy | undefined;
  }

  phases(o: Obj, k: string): Phase[] | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    const arr = Array.isArray(v) ? v : [v];
    return arr.map((p) => {
      if (typeof p !== 'string' || !isPhase(p))
        this.fail(`unknown phase ${JSON.stringify(p)} (modify_operation, validate, post_commit)`, k);
      return p;
    });
  }

  stringMap(o: Obj, k: string): Record<string, string> | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) this.fail('expected a mapping of strings', k);
    for (const [kk, vv] of Object.entries(v))
      if (typeof vv !== 'string') this.fail(`expected a string, got ${JSON.stringify(vv)}`, `${k}.${kk}`);
    return v as Record<string, string>;
  }

  object(o: Obj, k: string): JsonObject | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) this.fail('expected a mapping', k);
    return v as JsonObject;
  }

  filePath(o: Obj, k: string): string | undefined {
    const v = this.string(o, k);
    if (v === undefined) return undefined;
    return isAbsolute(v) ? v : resolve(dirname(this.file), v);
  }
}

const TOP_KEYS = [
  'apiVersion',
  'kind',
  'name',
  'transport',
  'auth',
  'gateway_id',
  'signing_key',
  'interceptors',
  'cases',
];
const SETTING_KEYS = [
  'name',
  'order',
  'failure_policy',
  'timeout',
  'max_response_bytes',
  'max_patches',
  'binding_policy',
  'bindings',
  'audience',
  'max_concurrency',
  'max_queue',
  'breaker',
  'faults',
];
const MODULE_KEYS = ['module', 'export', ...SETTING_KEYS];
const ENDPOINT_KEYS = ['endpoint', 'tls_ca_cert', ...SETTING_KEYS];
const BINDING_KEYS = ['id', 'rpc', 'phases', 'disabled', 'failure_policy'];
const BREAKER_KEYS = [
  'enabled',
  'error_threshold_percentage',
  'volume_threshold',
  'reset_timeout',
  'rolling_window',
];
const FAULT_KINDS = [
  'delay',
  'hang',
  'status',
  'oversized',
  'bad_pointer',
  'secret_patch',
  'unknown_field',
  'excess_patches',
];
const FAULT_KEYS = [...FAULT_KINDS, 'message', 'phase', 'method', 'binding', 'times'];
const CASE_KEYS = ['name', 'rpc', 'principal', 'operation', 'overlay', 'response', 'commit', 'expect'];
const EXPECT_KEYS = [
  'outcome',
  'code',
  'reason',
  'reason_matches',
  'operation',
  'patched',
  'annotations',
  'evaluations',
];
const EVALUATION_KEYS = ['interceptor', 'binding', 'phase', 'decision', 'layer', 'failure_policy', 'applied'];

function method(at: At, o: Obj, k: string): InterceptableMethod {
  const v = at.string(o, k, true) as string;
  try {
    const r = resolveRoute(v);
    if (r) return r.method;
  } catch (e) {
    if (!(e instanceof RpcSelectorError)) throw e;
  }
  at.fail(`"${v}" is not one of the 25 interceptable openshell.v1.OpenShell RPCs`, k);
}

function parseFault(at: At, v: unknown): Fault {
  const o = at.map(v, FAULT_KEYS);
  const kinds = FAULT_KINDS.filter((k) => o[k] !== undefined);
  if (kinds.length !== 1) at.fail(`give exactly one fault (${FAULT_KINDS.join(', ')}), got ${kinds.length}`);
  const phase = at.phases(o, 'phase');
  const methods = o.method === undefined ? undefined : [method(at, o, 'method')];
  const binding = at.string(o, 'binding');
  const times = at.int(o, 'times', 1);
  const scope = {
    ...(phase ? { phase } : {}),
    ...(methods ? { method: methods } : {}),
    ...(binding ? { binding } : {}),
    ...(times !== undefined ? { times } : {}),
  };
  const kind = kinds[0] as string;
  switch (kind) {
    case 'delay': {
      const d = at.duration(o, 'delay') as string;
      return faults.delay(d.endsWith('ms') ? Number(d.slice(0, -2)) : Number(d.slice(0, -1)) * 1000, scope);
    }
    case 'hang':
      if (o.hang !== true) at.fail('expected true', 'hang');
      return faults.hang(scope);
    case 'status': {
      const code = at.string(o, 'status') as string;
      if (!isGrpcCodeName(code) || code === 'OK')
        at.fail(`expected a non-OK gRPC status code name, got "${code}"`, 'status');
      return faults.status(code as DenialCodeName, at.string(o, 'message') ?? 'injected fault', scope);
    }
    case 'oversized':
      return faults.oversized(at.int(o, 'oversized', 1), scope);
    case 'bad_pointer':
      if (o.bad_pointer !== true) at.fail('expected true', 'bad_pointer');
      return faults.badPointer(scope);
    case 'secret_patch':
      return faults.secretPatch(o.secret_patch === true ? undefined : at.string(o, 'secret_patch'), scope);
    case 'unknown_field':
      return faults.unknownField(o.unknown_field === true ? undefined : at.string(o, 'unknown_field'), scope);
    default:
      return faults.excessPatches(at.int(o, 'excess_patches', 1), scope);
  }
}

function parseSettings(at: At, o: Obj): { settings: TestInterceptorSettings; faults: Fault[] } {
  const bindingPolicy = at.string(o, 'binding_policy');
  if (bindingPolicy !== undefined && !['dynamic', 'allowlist', 'exact'].includes(bindingPolicy))
    at.fail(`expected dynamic, allowlist or exact, got "${bindingPolicy}"`, 'binding_policy');
  let bindings: TestBindingEntry[] | undefined;
  if (o.bindings !== undefined) {
    if (!Array.isArray(o.bindings)) at.fail('expected a list', 'bindings');
    bindings = o.bindings.map((b, i) => {
      const bat: At = at.child('bindings').index(i);
      const m = bat.map(b, BINDING_KEYS);
      const id = bat.string(m, 'id');
      const rpc = bat.string(m, 'rpc');
      const phases = bat.phases(m, 'phases');
      const disabled = bat.bool(m, 'disabled');
      const failurePolicy = bat.policy(m, 'failure_policy');
      return {
        ...(id ? { id } : {}),
        ...(rpc ? { rpc } : {}),
        ...(phases ? { phases } : {}),
        ...(disabled !== undefined ? { disabled } : {}),
        ...(failurePolicy ? { failurePolicy } : {}),
      };
    });
  }
  let breaker: TestBreakerSettings | undefined;
  if (o.breaker === false) breaker = false;
  else if (o.breaker !== undefined) {
    const bat: At = at.child('breaker');
    const b = bat.map(o.breaker, BREAKER_KEYS);
    const enabled = bat.bool(b, 'enabled');
    const pct = bat.int(b, 'error_threshold_percentage', 1);
    const vol = bat.int(b, 'volume_threshold', 1);
    const reset = bat.duration(b, 'reset_timeout');
    const win = bat.duration(b, 'rolling_window');
    breaker = {
      ...(enabled !== undefined ? { enabled } : {}),
      ...(pct !== undefined ? { errorThresholdPercentage: pct } : {}),
      ...(vol !== undefined ? { volumeThreshold: vol } : {}),
      ...(reset ? { resetTimeout: reset } : {}),
      ...(win ? { rollingWindow: win } : {}),
    };
  }
  const faultList: Fault[] = [];
  if (o.faults !== undefined) {
    if (!Array.isArray(o.faults)) at.fail('expected a list', 'faults');
    o.faults.forEach((f, i) => {
      faultList.push(parseFault(at.child('faults').index(i), f));
    });
  }
  const settings: TestInterceptorSettings = Object.fromEntries(
    Object.entries({
      name: at.string(o, 'name'),
      order: o.order === undefined ? undefined : (at.int(o, 'order', Number.MIN_SAFE_INTEGER) as number),
      failurePolicy: at.policy(o, 'failure_policy'),
      timeout: at.duration(o, 'timeout'),
      maxResponseBytes: at.int(o, 'max_response_bytes', 1),
      maxPatches: at.int(o, 'max_patches', 0),
      bindingPolicy: bindingPolicy as BindingPolicy | undefined,
      bindings,
      audience: at.string(o, 'audience'),
      maxConcurrency: at.int(o, 'max_concurrency', 1),
      maxQueue: at.int(o, 'max_queue', 0),
      breaker,
    }).filter(([, v]) => v !== undefined),
  );
  return { settings, faults: faultList };
}

function parsePrincipal(at: At, v: unknown): PrincipalMap {
  if (v === undefined || v === null) return principals.user();
  if (typeof v === 'string') {
    const [kind, id] = v.split(':', 2);
    if (kind === 'user') return principals.user(id || undefined);
    if (kind === 'sandbox') return principals.sandbox(id || undefined);
    if (kind === 'anonymous' && id === undefined) return principals.anonymous();
    if (kind === 'unknown' && id === undefined) return principals.unknown();
    at.fail(`expected user[:subject], sandbox[:id], anonymous, unknown or a mapping, got "${v}"`);
  }
  if (!isObj(v)) at.fail('expected a preset (user, sandbox, anonymous, unknown) or a mapping of strings');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'string') out[k] = x;
    else if (Array.isArray(x) && x.every((s) => typeof s === 'string')) out[k] = x.join(',');
    else at.fail(`expected a string (or a list of strings for roles/scopes), got ${JSON.stringify(x)}`, k);
  }
  if (out.kind === undefined)
    at.fail('a principal mapping needs a kind (user, sandbox, anonymous, unknown)', 'kind');
  return out;
}

/** YAML `null` in an overlay removes the field (requestFixture uses undefined). */
function nullsToUndefined(v: unknown): unknown {
  if (v === null) return undefined;
  if (Array.isArray(v)) return v;
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, nullsToUndefined(x)]));
  return v;
}

function parseExpect(at: At, v: unknown): CaseExpectation {
  if (v === undefined || v === null)
    at.fail('a case needs an expect block: a case without assertions would pass silently');
  const o = at.map(v, EXPECT_KEYS);
  const outcome = at.string(o, 'outcome');
  if (outcome !== undefined && outcome !== 'allowed' && outcome !== 'denied')
    at.fail(`expected allowed or denied, got "${outcome}"`, 'outcome');
  const code = at.string(o, 'code');
  if (code !== undefined && !isGrpcCodeName(code))
    at.fail(`"${code}" is not a gRPC status code name`, 'code');
  const reasonMatches = at.string(o, 'reason_matches');
  let re: RegExp | undefined;
  if (reasonMatches !== undefined) {
    try {
      re = new RegExp(reasonMatches);
    } catch (e) {
      at.fail(`not a valid regular expression: ${(e as Error).message}`, 'reason_matches');
    }
  }
  const patched = at.object(o, 'patched');
  if (patched)
    for (const p of Object.keys(patched)) {
      try {
        parseJsonPointer(p);
      } catch {
        at.fail(`"${p}" is not a JSON Pointer (start it with /)`, `patched`);
      }
    }
  let evaluations: EvaluationExpectation[] | undefined;
  if (o.evaluations !== undefined) {
    if (!Array.isArray(o.evaluations)) at.fail('expected a list', 'evaluations');
    evaluations = o.evaluations.map((e, i) => {
      const eat: At = at.child('evaluations').index(i);
      const m = eat.map(e, EVALUATION_KEYS);
      if (Object.keys(m).length === 0) eat.fail('an empty entry asserts nothing');
      const decision = eat.string(m, 'decision');
      if (decision !== undefined && !['allow', 'deny', 'error'].includes(decision))
        eat.fail(`expected allow, deny or error, got "${decision}"`, 'decision');
      const phase = eat.phases(m, 'phase')?.[0];
      const failurePolicy = eat.policy(m, 'failure_policy');
      const applied = eat.bool(m, 'applied');
      return Object.fromEntries(
        Object.entries({
          interceptor: eat.string(m, 'interceptor'),
          binding: eat.string(m, 'binding'),
          phase,
          decision,
          layer: eat.string(m, 'layer'),
          failurePolicy,
          applied,
        }).filter(([, x]) => x !== undefined),
      ) as EvaluationExpectation;
    });
  }
  const exp: CaseExpectation = Object.fromEntries(
    Object.entries({
      outcome,
      code,
      reason: at.string(o, 'reason'),
      reasonMatches: re,
      operation: at.object(o, 'operation'),
      patched,
      annotations: at.stringMap(o, 'annotations'),
      evaluations,
    }).filter(([, x]) => x !== undefined),
  );
  if (Object.keys(exp).length === 0)
    at.fail(
      'the expect block asserts nothing: give outcome, code, reason, operation, patched, annotations or evaluations',
    );
  if ((exp.code || exp.reason || exp.reasonMatches) && exp.outcome === 'allowed')
    at.fail('code and reason describe a denial; they contradict outcome: allowed');
  return exp;
}

/**
 * Read and check a suite file (YAML). Refuses files that are not an InterceptorTestSuite,
 * unknown keys and cases without assertions, naming the file and the key.
 */
export function loadSuite(path: string | URL): SuiteSpec {
  const file = typeof path === 'string' ? resolve(path) : fileURLToPath(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SuiteError(file, undefined, `cannot read: ${(e as Error).message}`);
  }
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs) || docs.length !== 1 || !isDocument(docs[0]))
    throw new SuiteError(file, undefined, 'expected exactly one YAML document');
  const doc = docs[0];
  if (doc.errors.length > 0) throw new SuiteError(file, undefined, `invalid YAML: ${doc.errors[0]?.message}`);
  const raw: unknown = doc.toJS();
  const at: At = new At(file, '');
  if (!isObj(raw) || raw.kind !== SUITE_KIND || raw.apiVersion !== SUITE_API_VERSION)
    throw new SuiteError(
      file,
      undefined,
      `not an interceptor test suite: expected "apiVersion: ${SUITE_API_VERSION}" and "kind: ${SUITE_KIND}"`,
    );
  const top = at.map(raw, TOP_KEYS);
  const transport = (at.string(top, 'transport') ?? 'in-process') as TestTransport;
  if (transport !== 'in-process' && transport !== 'grpc')
    at.fail(`expected in-process or grpc, got "${transport}"`, 'transport');
  let signingKey: SuiteSpec['signingKey'];
  if (top.signing_key !== undefined) {
    const kat: At = at.child('signing_key');
    const k = kat.map(top.signing_key, ['private_key', 'key_id']);
    signingKey = {
      privateKeyPath: kat.filePath(k, 'private_key') ?? kat.fail('required', 'private_key'),
      keyId: kat.string(k, 'key_id', true) as string,
    };
  }

  const rawInterceptors = top.interceptors;
  if (!Array.isArray(rawInterceptors) || rawInterceptors.length === 0)
    at.fail('list at least one interceptor (module: or endpoint:)', 'interceptors');
  const interceptors = rawInterceptors.map((v, i): SuiteInterceptorSpec => {
    const iat: At = at.child('interceptors').index(i);
    if (!isObj(v)) iat.fail('expected a mapping with module: or endpoint:');
    if (v.module !== undefined && v.endpoint !== undefined) iat.fail('give module or endpoint, not both');
    if (v.module !== undefined) {
      const o = iat.map(v, MODULE_KEYS);
      const { settings, faults: f } = parseSettings(iat, o);
      return {
        settings,
        module: iat.filePath(o, 'module') as string,
        export: iat.string(o, 'export') ?? 'default',
        faults: f,
      };
    }
    if (v.endpoint !== undefined) {
      const o = iat.map(v, ENDPOINT_KEYS);
      const { settings, faults: f } = parseSettings(iat, o);
      if (f.length > 0) iat.fail('faults wrap module interceptors only', 'faults');
      const endpoint = iat.string(o, 'endpoint') as string;
      const name = settings.name ?? iat.fail('an endpoint needs a name', 'name');
      const ca = iat.filePath(o, 'tls_ca_cert');
      return {
        settings,
        endpoint,
        name,
        export: 'default',
        faults: [],
        ...(ca ? { tlsCaCertPath: ca } : {}),
      };
    }
    return iat.fail('expected module: (a module exporting an Interceptor) or endpoint: (a running service)');
  });

  const rawCases = top.cases;
  if (!Array.isArray(rawCases) || rawCases.length === 0) at.fail('list at least one case', 'cases');
  const names = new Set<string>();
  const cases = rawCases.map((v, i): SuiteCase => {
    const cat: At = at.child('cases').index(i);
    const o = cat.map(v, CASE_KEYS);
    const name = cat.string(o, 'name', true) as string;
    if (names.has(name)) cat.fail(`case name "${name}" is used twice`, 'name');
    names.add(name);
    const m = method(cat, o, 'rpc');
    if (o.operation !== undefined && o.overlay !== undefined)
      cat.fail('give operation (the whole request) or overlay (changes to the fixture), not both');
    const operation = cat.object(o, 'operation');
    const overlay = cat.object(o, 'overlay');
    const request =
      operation ??
      (requestFixture(m, (overlay ? nullsToUndefined(overlay) : undefined) as never) as JsonObject);
    const response = cat.object(o, 'response');
    const commit = cat.bool(o, 'commit') ?? true;
    return {
      name,
      method: m,
      principal: parsePrincipal(cat.child('principal'), o.principal),
      request,
      ...(response ? { response } : {}),
      commit,
      expect: parseExpect(cat.child('expect'), o.expect),
    };
  });
  const gatewayId = at.string(top, 'gateway_id');
  return {
    file,
    name: at.string(top, 'name') ?? file,
    transport,
    auth: at.bool(top, 'auth') ?? (transport === 'grpc' || signingKey !== undefined),
    ...(gatewayId ? { gatewayId } : {}),
    ...(signingKey ? { signingKey } : {}),
    interceptors,
    cases,
  };
}

function isInterceptor(v: unknown): v is Interceptor {
  const i = v as Partial<Interceptor> | null;
  return (
    typeof i === 'object' &&
    i !== null &&
    typeof i.evaluate === 'function' &&
    typeof i.manifest === 'function'
  );
}

async function loadModule(spec: SuiteSuiteRef, i: number): Promise<Interceptor> {
  const { file, entry } = spec;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(entry.module as string).href)) as Record<string, unknown>;
  } catch (e) {
    const hint =
      (e as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION'
        ? ' (a TypeScript module needs a TypeScript loader: run under vitest, or `node --import tsx`, or point at built JS)'
        : '';
    throw new SuiteError(
      file,
      `interceptors[${i}].module`,
      `cannot load ${entry.module}: ${(e as Error).message}${hint}`,
    );
  }
  const target = mod[entry.export];
  if (!isInterceptor(target))
    throw new SuiteError(
      file,
      `interceptors[${i}].module`,
      `${entry.module} has no Interceptor as export '${entry.export}'`,
    );
  return target;
}

interface SuiteSuiteRef {
  readonly file: string;
  readonly entry: SuiteInterceptorSpec;
}

/** Start the gateway a suite describes. */
export async function startSuiteGateway(spec: SuiteSpec): Promise<TestGateway> {
  const entries: TestGatewayInterceptor[] = [];
  for (const [i, entry] of spec.interceptors.entries()) {
    if (entry.module) {
      const loaded = await loadModule({ file: spec.file, entry }, i);
      const target = entry.faults.length > 0 ? withFaults(loaded, ...entry.faults) : loaded;
      entries.push({ interceptor: target, ...entry.settings });
    } else {
      entries.push({
        ...entry.settings,
        name: entry.name as string,
        endpoint: entry.endpoint as string,
        ...(entry.tlsCaCertPath ? { tlsCaCertPath: entry.tlsCaCertPath } : {}),
      });
    }
  }
  try {
    return await testGateway({
      interceptors: entries,
      transport: spec.transport,
      auth: spec.auth,
      ...(spec.gatewayId ? { gatewayId: spec.gatewayId } : {}),
      ...(spec.signingKey ? { signingKey: spec.signingKey } : {}),
    });
  } catch (e) {
    throw new SuiteError(spec.file, 'interceptors', `the gateway refused to start: ${(e as Error).message}`);
  }
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    return (
      ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]))
    );
  }
  return false;
}

/** Where `actual` departs from the deep partial `expected`, or undefined when it matches. */
function partialMismatch(actual: unknown, expected: unknown, path = ''): string | undefined {
  if (isObj(expected)) {
    if (!isObj(actual)) return `${path || '/'}: expected a mapping, got ${JSON.stringify(actual)}`;
    for (const [k, v] of Object.entries(expected)) {
      const p = `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (v === null) {
        if (Object.hasOwn(actual, k)) return `${p}: expected absent, got ${JSON.stringify(actual[k])}`;
        continue;
      }
      if (!Object.hasOwn(actual, k)) return `${p}: missing (expected ${JSON.stringify(v)})`;
      const m = partialMismatch(actual[k], v, p);
      if (m) return m;
    }
    return undefined;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length)
      return `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
    for (const [i, v] of expected.entries()) {
      const m = partialMismatch(actual[i], v, `${path}/${i}`);
      if (m) return m;
    }
    return undefined;
  }
  return jsonEqual(actual, expected)
    ? undefined
    : `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

function valueAt(doc: unknown, pointer: string): { found: boolean; value?: unknown } {
  let cur: unknown = doc;
  for (const t of parseJsonPointer(pointer)) {
    if (Array.isArray(cur) && /^(0|[1-9][0-9]*)$/.test(t) && Number(t) < cur.length) cur = cur[Number(t)];
    else if (isObj(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else return { found: false };
  }
  return { found: true, value: cur };
}

/** Check one call's result against a case's expectations; each failure in words. */
export function checkCase(expect: CaseExpectation, r: CallResult): string[] {
  const f: string[] = [];
  const status = r.status ? `${r.status.code}: ${JSON.stringify(r.status.message)}` : 'no status';
  if (expect.outcome && r.outcome !== expect.outcome)
    f.push(`outcome: expected ${expect.outcome}, got ${r.outcome} (${status})`);
  if ((expect.code || expect.reason || expect.reasonMatches) && r.outcome !== 'denied' && !expect.outcome)
    f.push('outcome: expected a denial, got allowed');
  if (r.outcome === 'denied') {
    if (expect.code && r.status?.code !== expect.code)
      f.push(`code: expected ${expect.code}, got ${r.status?.code}`);
    if (expect.reason !== undefined && r.status?.message !== expect.reason)
      f.push(`reason: expected ${JSON.stringify(expect.reason)}, got ${JSON.stringify(r.status?.message)}`);
    if (expect.reasonMatches && !expect.reasonMatches.test(r.status?.message ?? ''))
      f.push(`reason: ${JSON.stringify(r.status?.message)} does not match /${expect.reasonMatches.source}/`);
  }
  if (expect.operation) {
    const m = partialMismatch(r.operation, expect.operation);
    if (m) f.push(`operation ${m}`);
  }
  for (const [p, v] of Object.entries(expect.patched ?? {})) {
    const touched = r.evaluations.some(
      (e) =>
        e.applied &&
        e.patches.some((x) => x.path === p || p.startsWith(`${x.path}/`) || x.path.startsWith(`${p}/`)),
    );
    const at = valueAt(r.operation, p);
    if (!touched) f.push(`patched ${p}: no applied patch touched it`);
    else if (!at.found) f.push(`patched ${p}: the final operation has nothing there`);
    else if (!jsonEqual(at.value, v))
      f.push(`patched ${p}: expected ${JSON.stringify(v)}, got ${JSON.stringify(at.value)}`);
  }
  if (expect.annotations) {
    const merged: Record<string, string> = {};
    for (const e of r.evaluations) Object.assign(merged, e.annotations);
    for (const [k, v] of Object.entries(expect.annotations))
      if (merged[k] !== v)
        f.push(`annotations.${k}: expected ${JSON.stringify(v)}, got ${JSON.stringify(merged[k])}`);
  }
  if (expect.evaluations) {
    if (expect.evaluations.length !== r.evaluations.length)
      f.push(`evaluations: expected ${expect.evaluations.length}, got ${r.evaluations.length}`);
    expect.evaluations.forEach((want, i) => {
      const got = r.evaluations[i];
      if (!got) return;
      for (const [k, v] of Object.entries(want)) {
        const actual = (got as unknown as Record<string, unknown>)[k];
        if (actual !== v)
          f.push(`evaluations[${i}].${k}: expected ${JSON.stringify(v)}, got ${JSON.stringify(actual)}`);
      }
    });
  }
  return f;
}

/** Run one case on a started suite gateway. */
export async function runCase(gw: TestGateway, c: SuiteCase): Promise<CaseResult> {
  const started = performance.now();
  const r = await gw.call(c.method, c.request as never, {
    principal: c.principal,
    commit: c.commit,
    ...(c.response ? { response: c.response as never } : {}),
  });
  const failures = checkCase(c.expect, r);
  return {
    name: c.name,
    rpc: c.method,
    passed: failures.length === 0,
    failures,
    outcome: r.outcome,
    status: r.status,
    durationMs: performance.now() - started,
    evaluations: describeEvaluations(r.evaluations),
  };
}

/**
 * Load a suite, start its gateway, run every case in order on it (interceptor state carries
 * over from case to case, as in a real gateway) and stop it.
 */
export async function runSuite(
  path: string | URL,
  options: { readonly onCase?: (result: CaseResult) => void } = {},
): Promise<SuiteResult> {
  const spec = loadSuite(path);
  const gw = await startSuiteGateway(spec);
  const cases: CaseResult[] = [];
  try {
    for (const c of spec.cases) {
      const r = await runCase(gw, c);
      cases.push(r);
      options.onCase?.(r);
    }
  } finally {
    await gw.close();
  }
  return { file: spec.file, name: spec.name, passed: cases.every((c) => c.passed), cases };
}
