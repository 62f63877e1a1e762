import {
  type EvaluationPayload,
  evaluationPayload,
  findRoute,
  type InterceptorEvaluation,
  type Route,
} from '@openshell-interceptors/protocol';
import { EvaluateError } from './errors.js';

/** The phase payload and route of an evaluation, or the documented INVALID_ARGUMENT. */
export function routeEvaluation(ev: InterceptorEvaluation): { payload: EvaluationPayload; route: Route } {
  const payload = evaluationPayload(ev);
  if (!payload) {
    throw new EvaluateError(
      'INVALID_ARGUMENT',
      'the evaluation has no phase: set one of modify_operation, validate or post_commit',
    );
  }
  const route = findRoute(ev.service, ev.method);
  if (!route)
    throw new EvaluateError('INVALID_ARGUMENT', `${ev.service}/${ev.method} is not an interceptable RPC`);
  return { payload, route };
}
