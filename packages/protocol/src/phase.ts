import {
  GatewayInterceptorPhase,
  type InterceptorEvaluation,
} from './gen/openshell/gateway_interceptor/v1/gateway_interceptor.js';

/** The three interceptor phases, as configuration and logs spell them. */
export type Phase = 'modify_operation' | 'validate' | 'post_commit';
export const PHASES: readonly Phase[] = ['modify_operation', 'validate', 'post_commit'];

const TO_WIRE: Record<Phase, GatewayInterceptorPhase> = {
  modify_operation: GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_MODIFY_OPERATION,
  validate: GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_VALIDATE,
  post_commit: GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_POST_COMMIT,
};

export function isPhase(s: string): s is Phase {
  return s === 'modify_operation' || s === 'validate' || s === 'post_commit';
}

/** Phase → wire enum number (2, 3, 4). */
export function phaseToWire(phase: Phase): GatewayInterceptorPhase {
  return TO_WIRE[phase];
}

/** Wire enum number → phase; undefined for 0, 1 and unknown numbers (all invalid in a manifest). */
export function phaseFromWire(value: number): Phase | undefined {
  switch (value) {
    case GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_MODIFY_OPERATION:
      return 'modify_operation';
    case GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_VALIDATE:
      return 'validate';
    case GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_POST_COMMIT:
      return 'post_commit';
    default:
      return undefined;
  }
}

/** The phase of an evaluation and the operation it carries, from the `phase` oneof. */
export type EvaluationPayload =
  | { phase: 'modify_operation'; operation: Record<string, unknown> | undefined }
  | {
      phase: 'validate';
      operation: Record<string, unknown> | undefined;
      currentState: Record<string, unknown> | undefined;
    }
  | { phase: 'post_commit'; operation: Record<string, unknown> | undefined };

export function evaluationPayload(evaluation: InterceptorEvaluation): EvaluationPayload | undefined {
  if (evaluation.modifyOperation) {
    return { phase: 'modify_operation', operation: evaluation.modifyOperation.proposedOperation };
  }
  if (evaluation.validate) {
    return {
      phase: 'validate',
      operation: evaluation.validate.proposedOperation,
      currentState: evaluation.validate.currentState,
    };
  }
  if (evaluation.postCommit)
    return { phase: 'post_commit', operation: evaluation.postCommit.committedResponse };
  return undefined;
}

/** The `phase` oneof member for an operation, ready to spread into an `InterceptorEvaluation`. */
export function evaluationPhaseFields(
  phase: Phase,
  operation: Record<string, unknown>,
): Pick<InterceptorEvaluation, 'modifyOperation' | 'validate' | 'postCommit'> {
  switch (phase) {
    case 'modify_operation':
      return { modifyOperation: { proposedOperation: operation } };
    case 'validate':
      return { validate: { proposedOperation: operation, currentState: undefined } };
    case 'post_commit':
      return { postCommit: { committedResponse: operation } };
  }
}
