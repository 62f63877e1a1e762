import {
  evaluationPhaseFields,
  type InterceptableMethod,
  type InterceptorEvaluation,
  type JsonObject,
  OPENSHELL_SERVICE,
  type Phase,
} from '@openshell-interceptors/protocol';

export const USER = {
  kind: 'user',
  subject: 'alice@example.com',
  provider: 'oidc',
  roles: 'dev,admin',
} as const;

/** An evaluation as the gateway would send it (tests only). */
export function evaluation(
  method: InterceptableMethod | string,
  phase: Phase,
  operation: JsonObject,
  extra: { principal?: Record<string, string>; bindingId?: string; service?: string } = {},
): InterceptorEvaluation {
  return {
    interceptorName: 'under-test',
    bindingId: extra.bindingId ?? '',
    service: extra.service ?? OPENSHELL_SERVICE,
    method,
    principal: extra.principal ?? { ...USER },
    ...evaluationPhaseFields(phase, operation),
  };
}
