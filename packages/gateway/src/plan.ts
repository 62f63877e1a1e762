import {
  type FailurePolicy,
  findRoute,
  type InterceptorBinding,
  type InterceptorManifest,
  isFailurePolicy,
  PHASES,
  type Phase,
  parseRpcSelector,
  phaseFromWire,
  ROUTES,
  RpcSelectorError,
} from '@openshell-interceptors/protocol';
import type { BindingEntry, BindingPolicy, InterceptorConfig, Selector } from './config.js';

/** Where a binding's failure policy came from (CONTRACT section 6 resolution order). */
export type PolicySource =
  | 'config_binding'
  | 'manifest_binding'
  | 'config_interceptor'
  | 'manifest'
  | 'phase_default';

/** Ours: the phase defaults of the RFC (the shipped gateway defaults every phase to fail_closed). */
export const PHASE_DEFAULT_POLICY: Readonly<Record<Phase, FailurePolicy>> = {
  modify_operation: 'fail_closed',
  validate: 'fail_closed',
  post_commit: 'fail_open',
};

/** One binding of one interceptor in one phase, as the plan runs it. */
export interface PlannedBinding {
  readonly interceptor: string;
  readonly bindingId: string;
  readonly service: string;
  readonly method: string;
  /** `service/method`. */
  readonly rpc: string;
  readonly phase: Phase;
  readonly failurePolicy: FailurePolicy;
  readonly failurePolicySource: PolicySource;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly maxPatches: number;
  readonly order: number;
}

/** A manifest binding that does not run, and why (logged at start). */
export interface IgnoredBinding {
  readonly bindingId: string;
  readonly reason: string;
}

export interface PlannedInterceptor {
  readonly name: string;
  readonly endpoint: string;
  readonly audience: string;
  /** A token is attached to every call. */
  readonly authenticated: boolean;
  readonly order: number;
  readonly bindingPolicy: BindingPolicy;
  readonly providerProfiles: boolean;
  readonly manifestName: string;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly maxPatches: number;
  readonly maxConcurrency: number;
  readonly maxQueue: number;
  readonly breaker: InterceptorConfig['breaker'];
  readonly ignored: readonly IgnoredBinding[];
}

/** The immutable execution plan: `(service, method, phase)` → ordered bindings. */
export interface ExecutionPlan {
  /** Interceptors in `(order, name)` order. */
  readonly interceptors: readonly PlannedInterceptor[];
  /** Every planned binding in run order: by RPC (route table order), then phase, then binding order. */
  readonly entries: readonly PlannedBinding[];
  bindings(service: string, method: string, phase: Phase): readonly PlannedBinding[];
  toJSON(): { interceptors: readonly PlannedInterceptor[]; entries: readonly PlannedBinding[] };
}

/** A manifest or configuration the plan cannot be built from; the message names the problem. */
export class PlanError extends Error {
  constructor(
    readonly interceptor: string,
    message: string,
  ) {
    super(message);
    this.name = 'PlanError';
  }
}

interface ManifestBinding {
  readonly id: string;
  readonly selector: Selector;
  readonly phases: readonly Phase[];
  readonly failurePolicy?: FailurePolicy;
  readonly index: number;
}

/** A binding after binding_policy, before ordering across interceptors. */
export interface NormalizedBinding {
  readonly id: string;
  readonly selector: Selector;
  readonly phases: readonly Phase[];
  readonly policies: Readonly<Partial<Record<Phase, { policy: FailurePolicy; source: PolicySource }>>>;
}

export interface NormalizedInterceptor {
  readonly bindings: readonly NormalizedBinding[];
  readonly ignored: readonly IgnoredBinding[];
}

const rpcOf = (s: Selector) => `${s.service}/${s.method}`;
const sameSelector = (a: Selector, b: Selector) => a.service === b.service && a.method === b.method;
const phaseList = (ps: readonly Phase[]) => `[${ps.join(', ')}]`;

function selectorOf(b: InterceptorBinding): Selector | string {
  const s = b.selector;
  if (!s) return 'has no selector';
  if (s.rpc !== '') {
    try {
      return parseRpcSelector(s.rpc);
    } catch (e) {
      if (e instanceof RpcSelectorError) return `has an invalid rpc selector ${JSON.stringify(s.rpc)}`;
      throw e;
    }
  }
  if (s.service === '' || s.method === '')
    return 'has a selector without rpc, or without both service and method';
  return { service: s.service, method: s.method };
}

/** Validate one manifest binding; a string is the problem. */
function readManifestBinding(b: InterceptorBinding, index: number): ManifestBinding | string {
  const label = b.id === '' ? `binding #${index + 1}` : `binding '${b.id}'`;
  if (b.id === '') return `manifest ${label} has an empty id`;
  const sel = selectorOf(b);
  if (typeof sel === 'string') return `manifest ${label} ${sel}`;
  if (!findRoute(sel.service, sel.method))
    return `manifest ${label} selects ${rpcOf(sel)}, which is not one of the 25 interceptable openshell.v1.OpenShell RPCs`;
  if (b.phases.length === 0) return `manifest ${label} declares no phases`;
  const phases: Phase[] = [];
  for (const n of b.phases) {
    const p = phaseFromWire(n);
    if (!p) return `manifest ${label} declares phase ${n}, which is not a known phase (2, 3 or 4)`;
    if (!phases.includes(p)) phases.push(p);
  }
  if (b.failurePolicy !== '' && !isFailurePolicy(b.failurePolicy))
    return `manifest ${label} has failure_policy ${JSON.stringify(b.failurePolicy)}; expected fail_closed or fail_open`;
  return {
    id: b.id,
    selector: sel,
    phases,
    ...(b.failurePolicy !== '' ? { failurePolicy: b.failurePolicy as FailurePolicy } : {}),
    index,
  };
}

function entryLabel(e: BindingEntry): string {
  return `bindings[${e.index}]${e.id !== undefined ? ` (id '${e.id}')` : ''}`;
}

function resolvePolicies(
  ic: InterceptorConfig,
  manifest: InterceptorManifest,
  strict: boolean,
  mb: ManifestBinding,
  entry: BindingEntry | undefined,
  phases: readonly Phase[],
): NormalizedBinding['policies'] {
  const fail = (m: string) => new PlanError(ic.name, m);
  const chain: { policy: FailurePolicy | undefined; source: PolicySource }[] = strict
    ? [
        { policy: entry?.failurePolicy, source: 'config_binding' },
        { policy: ic.failurePolicy, source: 'config_interceptor' },
      ]
    : [
        { policy: entry?.failurePolicy, source: 'config_binding' },
        { policy: mb.failurePolicy, source: 'manifest_binding' },
        { policy: ic.failurePolicy, source: 'config_interceptor' },
        {
          policy: manifest.failurePolicy === '' ? undefined : (manifest.failurePolicy as FailurePolicy),
          source: 'manifest',
        },
      ];
  const explicit = chain.find((c) => c.policy !== undefined);
  const out: Partial<Record<Phase, { policy: FailurePolicy; source: PolicySource }>> = {};
  for (const phase of phases) {
    const r = explicit?.policy
      ? { policy: explicit.policy, source: explicit.source }
      : { policy: PHASE_DEFAULT_POLICY[phase], source: 'phase_default' as const };
    if (phase === 'post_commit' && r.policy === 'fail_closed') {
      throw fail(
        `binding '${mb.id}' includes post_commit but its failure policy resolves to fail_closed (from ${r.source.replace('_', ' ')}); a post_commit binding must be fail_open`,
      );
    }
    out[phase] = r;
  }
  return out;
}

/**
 * Normalise an interceptor's manifest by its `binding_policy` (CONTRACT section 5) and
 * resolve every failure policy (section 6). Throws PlanError naming the problem.
 */
export function normalizeBindings(
  ic: InterceptorConfig,
  manifest: InterceptorManifest,
): NormalizedInterceptor {
  const fail = (m: string): never => {
    throw new PlanError(ic.name, m);
  };
  if (
    manifest.failurePolicy !== '' &&
    !isFailurePolicy(manifest.failurePolicy) &&
    ic.bindingPolicy === 'dynamic'
  )
    fail(`manifest failure_policy ${JSON.stringify(manifest.failurePolicy)} is not fail_closed or fail_open`);

  const raw = manifest.bindings.map((b, i) => ({ b, read: readManifestBinding(b, i) }));
  const seenIds = new Set<string>();
  for (const { b } of raw) {
    if (b.id !== '' && seenIds.has(b.id)) fail(`manifest declares binding id '${b.id}' twice`);
    seenIds.add(b.id);
  }

  if (ic.bindingPolicy === 'dynamic') {
    const valid: ManifestBinding[] = raw.map(({ read }) => (typeof read === 'string' ? fail(read) : read));
    // Which config entry applies to each manifest binding; an id entry wins over a selector entry.
    const applied = new Map<string, BindingEntry>();
    for (const e of [...ic.bindings].sort(
      (a, b) => Number(a.id !== undefined) - Number(b.id !== undefined),
    )) {
      let targets: ManifestBinding[];
      if (e.id !== undefined) {
        const m = valid.find((v) => v.id === e.id);
        if (!m)
          fail(
            `${entryLabel(e)} matches no manifest binding (manifest ids: ${valid.map((v) => v.id).join(', ') || 'none'})`,
          );
        else if (e.selector && !sameSelector(e.selector, m.selector))
          fail(
            `${entryLabel(e)} names ${rpcOf(e.selector)} but manifest binding '${m.id}' selects ${rpcOf(m.selector)}; an override may not change or widen a selector`,
          );
        targets = m ? [m] : [];
      } else {
        const sel = e.selector as Selector;
        targets = valid.filter((v) => sameSelector(v.selector, sel));
        if (targets.length === 0)
          fail(`${entryLabel(e)} selects ${rpcOf(sel)}, which no manifest binding selects`);
      }
      for (const t of targets) {
        if (e.phases) {
          const added = e.phases.filter((p) => !t.phases.includes(p));
          if (added.length > 0)
            fail(
              `${entryLabel(e)} adds phase(s) ${phaseList(added)} that manifest binding '${t.id}' does not declare ${phaseList(t.phases)}; an override may only narrow phases`,
            );
        }
        applied.set(t.id, e);
      }
    }
    const bindings: NormalizedBinding[] = [];
    const ignored: IgnoredBinding[] = [];
    for (const mb of valid) {
      const e = applied.get(mb.id);
      if (e?.disabled) {
        ignored.push({ bindingId: mb.id, reason: `disabled by ${entryLabel(e)}` });
        continue;
      }
      const phases = e?.phases ? mb.phases.filter((p) => e.phases?.includes(p)) : mb.phases;
      bindings.push({
        id: mb.id,
        selector: mb.selector,
        phases,
        policies: resolvePolicies(ic, manifest, false, mb, e, phases),
      });
    }
    return { bindings, ignored };
  }

  // allowlist and exact: the configuration decides, in configured order.
  const exact = ic.bindingPolicy === 'exact';
  const matchedBy = new Map<string, BindingEntry>();
  const bindings: NormalizedBinding[] = [];
  for (const e of ic.bindings) {
    const sel = e.selector as Selector;
    const want = e.phases as readonly Phase[];
    const sameSel = raw.filter(({ b }) => {
      const s = selectorOf(b);
      return typeof s !== 'string' && sameSelector(s, sel) && (e.id === undefined || b.id === e.id);
    });
    const candidates = sameSel.filter(({ b }) => {
      const ps = b.phases.map((n) => phaseFromWire(n));
      const covers = want.every((p) => ps.includes(p));
      return exact
        ? covers && new Set(ps).size === want.length && ps.every((p) => p && want.includes(p))
        : covers;
    });
    if (candidates.length !== 1) {
      const how = exact ? 'exactly the phases' : 'phases including';
      const found =
        sameSel.length === 0
          ? `no manifest binding selects ${rpcOf(sel)}${e.id !== undefined ? ` with id '${e.id}'` : ''}`
          : `${candidates.length} of the manifest bindings for ${rpcOf(sel)} (${sameSel
              .map(
                ({ b }) =>
                  `'${b.id}' ${phaseList(b.phases.map((n) => phaseFromWire(n) ?? (String(n) as Phase)))}`,
              )
              .join(', ')}) have ${how} ${phaseList(want)}`;
      fail(`${entryLabel(e)} must match exactly one manifest binding, but ${found}`);
    }
    const { read } = candidates[0] as (typeof candidates)[number];
    if (typeof read === 'string') fail(read);
    const mb = read as ManifestBinding;
    const prior = matchedBy.get(mb.id);
    if (prior)
      fail(`manifest binding '${mb.id}' is matched by both ${entryLabel(prior)} and ${entryLabel(e)}`);
    matchedBy.set(mb.id, e);
    if (e.disabled) continue;
    bindings.push({
      id: mb.id,
      selector: mb.selector,
      phases: want,
      policies: resolvePolicies(ic, manifest, true, mb, e, want),
    });
  }
  const ignored: IgnoredBinding[] = [];
  raw.forEach(({ b, read }, i) => {
    const id = b.id === '' ? `#${i + 1}` : b.id;
    if (matchedBy.has(b.id)) {
      if (matchedBy.get(b.id)?.disabled)
        ignored.push({ bindingId: id, reason: 'disabled in the configuration' });
      return;
    }
    const what = typeof read === 'string' ? read : `manifest binding '${id}' (${rpcOf(read.selector)})`;
    if (exact)
      fail(`${what} is not in the configuration; binding_policy "exact" refuses extra manifest bindings`);
    ignored.push({ bindingId: id, reason: 'not in the allowlist' });
  });
  return { bindings, ignored };
}

/** Byte-wise comparison of names (the shipped gateway sorts names as bytes). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function byOrderThenName(
  a: { order: number; name: string },
  b: { order: number; name: string },
): number {
  return a.order - b.order || compareNames(a.name, b.name);
}

/** Assemble the immutable plan from normalised interceptors (already in `(order, name)` order). */
export function buildPlan(
  interceptors: readonly {
    config: InterceptorConfig;
    planned: PlannedInterceptor;
    bindings: readonly NormalizedBinding[];
  }[],
): ExecutionPlan {
  const sorted = [...interceptors].sort((a, b) => byOrderThenName(a.config, b.config));
  const index = new Map<string, PlannedBinding[]>();
  const key = (service: string, method: string, phase: Phase) => `${service}/${method}#${phase}`;
  for (const { config: ic, bindings } of sorted) {
    for (const nb of bindings) {
      for (const phase of nb.phases) {
        const pol = nb.policies[phase];
        if (!pol) continue;
        const pb: PlannedBinding = Object.freeze({
          interceptor: ic.name,
          bindingId: nb.id,
          service: nb.selector.service,
          method: nb.selector.method,
          rpc: rpcOf(nb.selector),
          phase,
          failurePolicy: pol.policy,
          failurePolicySource: pol.source,
          timeoutMs: ic.timeoutMs,
          maxResponseBytes: ic.maxResponseBytes,
          maxPatches: ic.maxPatches,
          order: ic.order,
        });
        const k = key(pb.service, pb.method, phase);
        const list = index.get(k) ?? [];
        list.push(pb);
        index.set(k, list);
      }
    }
  }
  const entries: PlannedBinding[] = [];
  for (const r of ROUTES) {
    for (const phase of PHASES) {
      const list = index.get(key(r.service, r.method, phase));
      if (list) {
        Object.freeze(list);
        entries.push(...list);
      }
    }
  }
  const planned = Object.freeze(sorted.map((s) => Object.freeze({ ...s.planned })));
  const frozenEntries = Object.freeze(entries);
  const empty: readonly PlannedBinding[] = Object.freeze([]);
  return Object.freeze({
    interceptors: planned,
    entries: frozenEntries,
    bindings: (service: string, method: string, phase: Phase) =>
      index.get(key(service, method, phase)) ?? empty,
    toJSON: () => ({ interceptors: planned, entries: frozenEntries }),
  });
}
