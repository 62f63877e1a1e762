// The context a handler receives. Its lazy members (signal, operation, draft) are getters on
// a class prototype rather than getters in an object literal: a literal's getters are new
// closures on every call, so V8 gives every call's context a hidden class of its own, and
// those long-lived hidden classes keep each call's objects (the context, its closures, the
// operation) alive through young-generation collections, which then copy megabytes a second.
import type { JsonObject, OpenShellService, Phase, Principal } from '@openshell-interceptors/protocol';
import type { CallScope } from './deadline.js';

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** The facts of the call, copied onto the context as plain fields. */
export type HandlerContextFields = Pick<
  HandlerContext,
  'interceptor' | 'service' | 'method' | 'rpc' | 'phase' | 'bindingId' | 'principal' | 'deadline'
>;

class HandlerContext {
  readonly interceptor: string;
  readonly service: OpenShellService;
  readonly method: string;
  readonly rpc: string;
  readonly phase: Phase;
  readonly bindingId: string;
  readonly principal: Principal;
  readonly deadline: number | undefined;
  /** A closure rather than a method, so `({ annotate }) => annotate(...)` works. */
  readonly annotate: (key: string, value: string) => void;
  readonly #scope: CallScope;
  readonly #view: JsonObject;
  #operation: JsonObject | undefined;
  #draft: JsonObject | undefined;

  constructor(
    fields: HandlerContextFields,
    scope: CallScope,
    view: JsonObject,
    annotations: Record<string, string>,
  ) {
    this.interceptor = fields.interceptor;
    this.service = fields.service;
    this.method = fields.method;
    this.rpc = fields.rpc;
    this.phase = fields.phase;
    this.bindingId = fields.bindingId;
    this.principal = fields.principal;
    this.deadline = fields.deadline;
    this.annotate = (key: string, value: string) => {
      annotations[String(key)] = String(value);
    };
    this.#scope = scope;
    this.#view = view;
  }

  get signal(): AbortSignal {
    return this.#scope.signal;
  }

  /** A frozen copy of the view, made on first read: a handler that never reads it pays nothing per byte. */
  get operation(): JsonObject {
    if (this.#operation === undefined) this.#operation = deepFreeze(structuredClone(this.#view));
    return this.#operation;
  }

  // Static, so neither shows on the context a handler sees.
  static makeDraft(c: HandlerContext): JsonObject {
    if (c.#draft === undefined) c.#draft = structuredClone(c.#view);
    return c.#draft;
  }

  static draftIfMade(c: HandlerContext): JsonObject | undefined {
    return c.#draft;
  }
}

class ModifyHandlerContext extends HandlerContext {
  /** A mutable copy of the view, made on first read. */
  get draft(): JsonObject {
    return HandlerContext.makeDraft(this);
  }
}

class ValidateHandlerContext extends HandlerContext {
  readonly currentState: JsonObject | undefined;

  constructor(
    fields: HandlerContextFields,
    scope: CallScope,
    view: JsonObject,
    annotations: Record<string, string>,
    currentState: JsonObject | undefined,
  ) {
    super(fields, scope, view, annotations);
    this.currentState = currentState === undefined ? undefined : deepFreeze(currentState);
  }
}

export type { HandlerContext };

/** The draft of a modify context, when its handler read it (the SDK diffs it against the view). */
export function madeDraft(ctx: HandlerContext): JsonObject | undefined {
  return HandlerContext.draftIfMade(ctx);
}

/** The context for one handler call of `fields.phase`. */
export function handlerContext(
  fields: HandlerContextFields,
  scope: CallScope,
  view: JsonObject,
  annotations: Record<string, string>,
  currentState: JsonObject | undefined,
): HandlerContext {
  if (fields.phase === 'modify_operation') return new ModifyHandlerContext(fields, scope, view, annotations);
  if (fields.phase === 'validate')
    return new ValidateHandlerContext(fields, scope, view, annotations, currentState);
  return new HandlerContext(fields, scope, view, annotations);
}
