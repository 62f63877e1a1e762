// Benchmark payloads: the realistic CreateSandbox fixture, padded to a target size.
import {
  evaluationPhaseFields,
  InterceptorEvaluation,
  type InterceptorResult,
  type JsonObject,
  OPENSHELL_SERVICE,
  type Phase,
} from '@openshell-interceptors/protocol';
import { REQUEST_FIXTURES, RESPONSE_FIXTURES } from '../../packages/testing/src/fixtures.js';

const KB = 1024;

/** Bytes of the compact JSON text of a value (what "a 4 KB operation" means here). */
export function jsonBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v));
}

/**
 * A valid CreateSandbox request of about `targetBytes` of JSON: the fixture, with labels and
 * spec.environment entries added (half each) until it reaches the size. Deterministic.
 */
export function sandboxRequest(targetBytes: number): JsonObject {
  const base = structuredClone(REQUEST_FIXTURES.CreateSandbox) as unknown as JsonObject & {
    labels: Record<string, string>;
    spec: { environment?: Record<string, string> };
  };
  const labels = base.labels;
  const env: Record<string, string> = {};
  base.spec.environment = env;
  let size = jsonBytes(base);
  // Each entry adds about 100 bytes; values vary so nothing compresses into a pattern.
  for (let i = 0; size < targetBytes; i++) {
    const value = `${i.toString(36)}-${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2).slice(i % 36, (i % 36) + 64)}`;
    const entry =
      i % 2 === 0 ? ([labels, `bench.example/label-${i}`] as const) : ([env, `BENCH_VAR_${i}`] as const);
    entry[0][entry[1]] = value;
    size += entry[1].length + value.length + 6;
  }
  if (Object.keys(env).length === 0) delete base.spec.environment;
  return base;
}

/** What the commit returns for `request`: the fixture sandbox carrying the request's name, labels and spec. */
export function sandboxResponse(request: JsonObject): JsonObject {
  const r = structuredClone(RESPONSE_FIXTURES.CreateSandbox) as unknown as JsonObject & {
    sandbox: { metadata: Record<string, unknown>; spec: unknown };
  };
  r.sandbox.metadata.labels = request.labels;
  r.sandbox.metadata.name = request.name;
  r.sandbox.spec = request.spec;
  return r;
}

/** The one patch every benchmark modifier returns. */
export const BENCH_PATCH = { op: 'add', path: '/labels/bench.example~1patched', value: 'yes' } as const;

export const ALLOW_WITH_PATCH: InterceptorResult = {
  allowed: true,
  reason: '',
  statusCode: '',
  patches: [{ op: BENCH_PATCH.op, path: BENCH_PATCH.path, value: BENCH_PATCH.value, from: '' }],
  logAnnotations: {},
};

export const ALLOW: InterceptorResult = {
  allowed: true,
  reason: '',
  statusCode: '',
  patches: [],
  logAnnotations: {},
};

/** The caller of every benchmark API call. */
export const PRINCIPAL = { kind: 'user', subject: 'alice', provider: 'oidc' };

/** An InterceptorEvaluation as the gateway sends it for CreateSandbox. */
export function evaluation(
  phase: Phase,
  operation: JsonObject,
  interceptorName: string,
  bindingId: string,
): InterceptorEvaluation {
  return {
    interceptorName,
    bindingId,
    service: OPENSHELL_SERVICE,
    method: 'CreateSandbox',
    principal: { ...PRINCIPAL },
    ...evaluationPhaseFields(phase, operation),
  };
}

/** Its wire bytes. */
export function encodeEvaluation(ev: InterceptorEvaluation): Buffer {
  return Buffer.from(InterceptorEvaluation.encode(ev).finish());
}

export const SIZES = {
  '1KB': KB,
  '4KB': 4 * KB,
  '16KB': 16 * KB,
  '64KB': 64 * KB,
  '256KB': 256 * KB,
  '1MB': KB * KB,
};
