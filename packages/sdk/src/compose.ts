import {
  defaultAudience,
  type InterceptorBinding,
  type InterceptorEvaluation,
  type InterceptorManifest,
  type InterceptorResult,
  type ProviderProfileSnapshot,
  phaseFromWire,
} from '@openshell-interceptors/protocol';
import type { Logger } from 'pino';
import { EvaluateError } from './errors.js';
import { evaluateWithInfo, instrumentedEvaluate } from './instrument.js';
import type { EvaluationOutcome, InternalInterceptor } from './internal.js';
import { kEvaluate } from './internal.js';
import { defaultLogger } from './log.js';
import { routeEvaluation } from './routing.js';
import type { EvaluateContext, Interceptor } from './types.js';

interface Owned {
  readonly binding: InterceptorBinding;
  readonly part: Interceptor;
}

function isInterceptor(v: unknown): v is Interceptor {
  const i = v as Partial<Interceptor> | null;
  return (
    typeof i === 'object' &&
    i !== null &&
    typeof i.name === 'string' &&
    typeof i.manifest === 'function' &&
    typeof i.evaluate === 'function' &&
    typeof i.snapshotProviderProfiles === 'function'
  );
}

class Composite implements InternalInterceptor {
  readonly name: string;
  readonly #owned: readonly Owned[];
  readonly #byId: ReadonlyMap<string, Owned>;
  readonly #profilesPart: Interceptor | undefined;
  #logger: Logger | undefined;

  constructor(name: string, parts: readonly Interceptor[]) {
    if (typeof name !== 'string' || name.trim() === '' || /[\s\p{Cc}]/u.test(name)) {
      throw new TypeError(`compose: the service name must be a non-empty string without whitespace`);
    }
    this.name = name;
    if (parts.length === 0) throw new TypeError(`compose('${name}'): give at least one interceptor`);
    const owned: Owned[] = [];
    const byId = new Map<string, Owned>();
    const profileParts: Interceptor[] = [];
    parts.forEach((part, i) => {
      if (!isInterceptor(part)) throw new TypeError(`compose('${name}'): part ${i} is not an Interceptor`);
      const m = part.manifest();
      if (m.providerProfiles) profileParts.push(part);
      for (const b of m.bindings) {
        const prev = byId.get(b.id);
        if (prev) {
          throw new Error(
            `compose('${name}'): binding id '${b.id}' is declared by both '${prev.part.name}' and '${part.name}'; ` +
              `give one of them another id (BindingOptions.id)`,
          );
        }
        // A part's manifest-wide policy becomes explicit on its bindings, so it survives the merge.
        const o = { binding: { ...b, failurePolicy: b.failurePolicy || m.failurePolicy }, part };
        byId.set(b.id, o);
        owned.push(o);
      }
    });
    if (profileParts.length > 1) {
      throw new Error(
        `compose('${name}'): only one part may serve provider profiles (${profileParts.map((p) => `'${p.name}'`).join(', ')} do)`,
      );
    }
    this.#owned = owned;
    this.#byId = byId;
    this.#profilesPart = profileParts[0];
  }

  manifest(): InterceptorManifest {
    return {
      name: this.name,
      bindings: this.#owned.map((o) => ({ ...o.binding, phases: [...o.binding.phases] })),
      failurePolicy: '',
      providerProfiles: this.#profilesPart !== undefined,
      expectedAudience: defaultAudience(this.name),
    };
  }

  evaluate(ev: InterceptorEvaluation, ctx?: EvaluateContext): Promise<InterceptorResult> {
    this.#logger ??= defaultLogger(this.name);
    return instrumentedEvaluate(this, ev, ctx, { logger: this.#logger });
  }

  snapshotProviderProfiles(ctx?: EvaluateContext): Promise<ProviderProfileSnapshot> {
    if (!this.#profilesPart) {
      return Promise.reject(
        new EvaluateError('UNIMPLEMENTED', `interceptor '${this.name}' does not serve provider profiles`),
      );
    }
    return this.#profilesPart.snapshotProviderProfiles(ctx);
  }

  async [kEvaluate](ev: InterceptorEvaluation, ctx: EvaluateContext | undefined): Promise<EvaluationOutcome> {
    if (ev.bindingId !== '') {
      const o = this.#byId.get(ev.bindingId);
      if (!o)
        throw new EvaluateError('NOT_FOUND', `interceptor '${this.name}' has no binding '${ev.bindingId}'`);
      return evaluateWithInfo(o.part, ev, ctx);
    }
    const { payload, route: r } = routeEvaluation(ev);
    const phase = payload.phase;
    const candidates = this.#owned.filter(
      (o) =>
        o.binding.selector?.method === r.method && o.binding.phases.some((p) => phaseFromWire(p) === phase),
    );
    if (candidates.length === 0) {
      throw new EvaluateError(
        'UNIMPLEMENTED',
        `interceptor '${this.name}' has no binding for ${r.rpc} in ${phase}`,
      );
    }
    if (candidates.length > 1) {
      throw new EvaluateError(
        'INVALID_ARGUMENT',
        `bindings ${candidates.map((c) => `'${c.binding.id}'`).join(', ')} all handle ${r.rpc} in ${phase}; set binding_id`,
      );
    }
    const only = candidates[0]!;
    return evaluateWithInfo(only.part, { ...ev, bindingId: only.binding.id }, ctx);
  }
}

/**
 * Serve several interceptor definitions as one service. Bindings keep their ids
 * (duplicates are refused), each part's failure policy moves onto its bindings,
 * and at most one part may serve provider profiles. Compose after registering
 * the parts' handlers: the merged manifest is fixed here.
 */
export function compose(name: string, ...parts: Interceptor[]): Interceptor {
  return new Composite(name, parts);
}
