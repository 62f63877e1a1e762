// The "three raw grpc-js calls" the runtime is compared with: what the gateway sends for one
// CreateSandbox API call (the same three evaluations, built once from one real call), sent with
// the generated codec over plain clients, with the same commit in between.
import type * as grpc from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import type { Gateway } from '@openshell-interceptors/gateway';
import {
  canonicalize,
  InterceptorEvaluation,
  InterceptorResult,
  type JsonObject,
  operationView,
  route,
} from '@openshell-interceptors/protocol';
import { EVALUATE_PATH } from './load.js';
import { evaluation, PRINCIPAL } from './payload.js';

const CS = route('CreateSandbox');

/**
 * One API call's raw equivalent. `clients` reach the modifier, validator and observer the
 * gateway calls; the gateway makes one real call first to learn the patched operation and
 * the committed response (it must be allowed, with the modifier's patch applied).
 */
export async function rawApiCall(
  gw: Gateway,
  clients: readonly grpc.Client[],
  request: JsonObject,
  commit: (r: JsonObject) => Promise<JsonObject>,
  deadlineMs: number,
): Promise<() => Promise<void>> {
  const first = await gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request, commit });
  if (first.outcome !== 'allowed' || first.evaluations.length !== 3 || !first.evaluations[0]?.applied)
    throw new Error(`raw calls: unexpected outcome ${JSON.stringify(first.evaluations)}`);
  const view = operationView(CS.requestType, canonicalize(CS.requestType, request).message);
  const committed = operationView(
    CS.responseType,
    canonicalize(CS.responseType, first.response as JsonObject).message,
  );
  const evs = [
    evaluation('modify_operation', view, 'modifier', 'cs-modifier'),
    evaluation('validate', first.operation, 'validator', 'cs-validator'),
    evaluation('post_commit', committed, 'observer', 'cs-observer'),
  ] as const;
  const one = (c: grpc.Client, ev: InterceptorEvaluation) =>
    new Promise<InterceptorResult>((resolve, reject) => {
      c.makeUnaryRequest<InterceptorEvaluation, InterceptorResult>(
        EVALUATE_PATH,
        (m) => Buffer.from(InterceptorEvaluation.encode(m).finish()),
        (b) => InterceptorResult.decode(b),
        ev,
        new Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => (err || !res ? reject(err ?? new Error('empty')) : resolve(res)),
      );
    });
  const [modifier, validator, observer] = clients as [grpc.Client, grpc.Client, grpc.Client];
  return async () => {
    await one(modifier, evs[0]);
    await one(validator, evs[1]);
    await commit(request);
    await one(observer, evs[2]);
  };
}
