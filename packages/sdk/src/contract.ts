import {
  checkChangedProtoJson,
  copyForPatchOperation,
  DEFAULT_DENIAL_CODE,
  type DenialCodeName,
  encodeResult,
  type InterceptorResult,
  type JsonObject,
  JsonPointerError,
  normalizeStatusCode,
  type Phase,
  ProtoJsonError,
  parseJsonPointer,
  parseProtoJson,
  pointerTouchesSecret,
  schema,
} from '@openshell-interceptors/protocol';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import type { Logger } from 'pino';
import { type ContractRule, ContractViolationError, EvaluateError } from './errors.js';
import type { Annotations, Patch } from './results.js';

const { applyOperation, compare } = fastJsonPatch;

export const DEFAULT_MAX_PATCHES = 32;
export const DEFAULT_MAX_RESULT_BYTES = 1024 * 1024;

export interface ContractSettings {
  readonly strict: boolean;
  readonly maxPatches: number;
  readonly maxResultBytes: number;
  readonly logger: Logger;
}

export interface ResultSite {
  readonly interceptor: string;
  readonly bindingId: string;
  readonly phase: Phase;
  /** Request type of the RPC (what patches apply to). */
  readonly requestType: string;
}

/** What a handler decided, before the contract checks. */
export interface RawOutcome {
  readonly decision: 'allow' | 'deny';
  readonly code?: string;
  readonly reason?: string;
  readonly annotations: Annotations;
  readonly patches: readonly Patch[];
}

export interface CheckedResult {
  readonly result: InterceptorResult;
  readonly decision: 'allow' | 'deny';
  readonly code: DenialCodeName | undefined;
  readonly patchCount: number;
  /** `result` encoded (done anyway to check its size). */
  readonly bytes: Uint8Array;
}

/** The reply sent instead of a result the contract forbids (the gateway's failure policy then decides). */
export const INVALID_RESULT_MESSAGE = 'the interceptor produced an invalid result';

/**
 * RFC 6902 patches that turn `view` into `draft`. Computed against the exact view
 * received, so nothing the handler did not touch is removed, and a member absent
 * from the view is `add`ed, never `replace`d.
 */
export function diffDraft(view: JsonObject, draft: unknown): Patch[] {
  return compare(view, draft as object) as Patch[];
}

function viewParses(typeName: string, view: JsonObject): boolean {
  try {
    parseProtoJson(typeName, view);
    return true;
  } catch {
    return false;
  }
}

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A patch pointer must parse and stay clear of secret fields. */
function checkPointer(
  ptr: string,
  at: () => string,
  site: ResultSite,
  fail: (rule: ContractRule, message: string) => never,
): void {
  let tokens: string[] = [];
  try {
    tokens = parseJsonPointer(ptr);
  } catch (err) {
    fail('invalid-patch', `${at()}: ${err instanceof JsonPointerError ? err.message : describeError(err)}`);
  }
  if (pointerTouchesSecret(schema, site.requestType, tokens)) {
    fail(
      'secret-patch',
      `${at()}: "${ptr}" touches a secret field (or a value holding one) of ${site.requestType}`,
    );
  }
}

/**
 * Check a handler's outcome against the contract (CONTRACT sections 3 and 4) and
 * encode it. Strict: the first violation throws `ContractViolationError`.
 * Otherwise each violation is logged and replaced by its safe result: a
 * post_commit denial → allowed; patches outside modify → dropped; unknown status
 * code → PERMISSION_DENIED; anything that would make the gateway reject the patch
 * set or the reply → EvaluateError INTERNAL (the gateway's failure policy decides).
 */
export function checkResult(
  outcome: RawOutcome,
  view: JsonObject,
  site: ResultSite,
  s: ContractSettings,
): CheckedResult {
  const violation = (rule: ContractRule, message: string): ContractViolationError => {
    const err = new ContractViolationError(rule, message, site);
    if (s.strict) throw err;
    s.logger.error(
      { rule, interceptor: site.interceptor, binding_id: site.bindingId, phase: site.phase },
      err.message,
    );
    return err;
  };
  const fail = (rule: ContractRule, message: string): never => {
    const cause = violation(rule, message);
    throw new EvaluateError('INTERNAL', INVALID_RESULT_MESSAGE, { cause });
  };

  let decision = outcome.decision;
  let patches = outcome.patches;
  let code: DenialCodeName | undefined;
  let reason = '';

  if (site.phase === 'post_commit' && decision === 'deny') {
    violation('post-commit-denial', 'a post_commit observer cannot deny: the operation is already committed');
    decision = 'allow';
  }
  if (site.phase !== 'modify_operation' && patches.length > 0) {
    violation(
      'patches-outside-modify',
      `${patches.length} patch(es) returned in ${site.phase}; only modify_operation may patch`,
    );
    patches = [];
  }
  if (decision === 'deny') {
    const n = normalizeStatusCode(String(outcome.code ?? ''));
    if (n === undefined || n === 'OK') {
      violation(
        'unknown-status-code',
        `${JSON.stringify(outcome.code)} is not a gRPC status code a denial can carry`,
      );
      code = DEFAULT_DENIAL_CODE;
    } else code = n;
    reason = outcome.reason ?? '';
    patches = []; // the gateway ignores patches on a denial
  }

  if (patches.length > 0) {
    if (patches.length > s.maxPatches)
      fail('too-many-patches', `${patches.length} patches, the maximum is ${s.maxPatches}`);
    patches.forEach((p, i) => {
      // Rendered only for an error message: stringifying every patch value on every call is not free.
      const at = () => `patch ${i} (${JSON.stringify(p)})`;
      if (!OPS.has(p.op)) fail('invalid-patch', `${at()}: op must be one of ${[...OPS].join(', ')}`);
      const moves = p.op === 'move' || p.op === 'copy';
      if (moves && typeof p.from !== 'string') fail('invalid-patch', `${at()}: ${p.op} needs "from"`);
      if ((p.op === 'add' || p.op === 'replace' || p.op === 'test') && p.value === undefined) {
        fail('invalid-patch', `${at()}: ${p.op} needs a value`);
      }
      checkPointer(p.path, at, site, fail);
      if (moves) checkPointer(p.from ?? '', at, site, fail);
    });
    // Applied to copies made along the patch paths only, then checked where they changed:
    // the cost follows the patches, not the size of the operation.
    let candidate: unknown = view;
    try {
      const copies = new WeakSet<object>();
      patches.forEach((p, i) => {
        // Overlays, not copies: the candidate is checked and dropped, and a patch into a large
        // map must not cost a copy of the map.
        candidate = copyForPatchOperation(candidate, p, copies, { overlay: true });
        candidate = applyOperation(candidate, { ...p } as Operation, true, true, true, i).newDocument;
      });
    } catch (err) {
      fail('invalid-patch', `the patches do not apply to the operation view: ${describeError(err)}`);
    }
    try {
      const changed = patches.filter((p) => p.op !== 'test').map((p) => p.path);
      checkChangedProtoJson(site.requestType, candidate, changed);
    } catch (err) {
      // Only when this SDK's schema knows everything in the view: a gateway built from a
      // newer proto may send fields we do not know, and those are not the handler's fault.
      if (viewParses(site.requestType, view)) {
        const detail = err instanceof ProtoJsonError ? err.message : describeError(err);
        fail(
          'invalid-patched-operation',
          `the patched operation is not a valid ${site.requestType}: ${detail}`,
        );
      }
    }
  }

  const result: InterceptorResult = {
    allowed: decision === 'allow',
    reason,
    statusCode: code ?? '',
    patches: patches.map((p) => ({ op: p.op, path: p.path, value: p.value, from: p.from ?? '' })),
    logAnnotations: { ...outcome.annotations },
  };
  const bytes = encodeResult(result);
  if (bytes.length > s.maxResultBytes)
    fail(
      'result-too-large',
      `the encoded result is ${bytes.length} bytes, the budget is ${s.maxResultBytes}`,
    );
  return { result, decision, code, patchCount: result.patches.length, bytes };
}
