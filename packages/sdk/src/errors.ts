import type { GrpcCodeName } from '@openshell-interceptors/protocol';

/**
 * A protocol-level failure of one evaluation, carrying the gRPC status a client
 * would see. `serve` sends it as that status; an in-process caller of
 * `Interceptor.evaluate` receives the same code and message as a rejection.
 * A handler may throw one on purpose to choose the status (e.g. UNAVAILABLE
 * when a backing store is down); any other thrown error becomes INTERNAL.
 */
export class EvaluateError extends Error {
  readonly code: Exclude<GrpcCodeName, 'OK'>;

  constructor(code: Exclude<GrpcCodeName, 'OK'>, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EvaluateError';
    this.code = code;
  }
}

/** The contract rules the SDK enforces on what a handler returns (docs/writing-interceptors.md lists them). */
export type ContractRule =
  | 'patches-outside-modify'
  | 'post-commit-denial'
  | 'unknown-status-code'
  | 'invalid-patch'
  | 'secret-patch'
  | 'too-many-patches'
  | 'invalid-patched-operation'
  | 'result-too-large'
  | 'invalid-provider-snapshot'
  | 'invalid-return';

/**
 * A handler returned something the gateway contract forbids: a programming error.
 * In strict mode (tests) `evaluate` rejects with it; otherwise the SDK logs it and
 * sends the documented safe result instead.
 */
export class ContractViolationError extends Error {
  readonly rule: ContractRule;
  readonly interceptor: string;
  readonly bindingId: string | undefined;

  constructor(rule: ContractRule, message: string, where: { interceptor: string; bindingId?: string }) {
    const at = where.bindingId ? `${where.interceptor}/${where.bindingId}` : where.interceptor;
    super(`contract violation (${rule}) in interceptor '${at}': ${message}`);
    this.name = 'ContractViolationError';
    this.rule = rule;
    this.interceptor = where.interceptor;
    this.bindingId = where.bindingId;
  }
}
