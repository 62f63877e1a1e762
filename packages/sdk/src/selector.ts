import { principalList, principalSubject } from '@openshell-interceptors/protocol';
import type { Selector, SelectorInput } from './types.js';

type Obj = Readonly<Record<string, unknown>>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/**
 * The labels of an operation: its `labels`, else `metadata.labels`, else the
 * `metadata.labels` of its first object-valued field (`provider.metadata.labels`,
 * `sandbox.metadata.labels`). Empty when none is found.
 */
export function operationLabels(operation: Obj): Readonly<Record<string, string>> {
  const direct = stringMap(operation.labels);
  if (direct) return direct;
  const meta = isObject(operation.metadata) ? stringMap(operation.metadata.labels) : undefined;
  if (meta) return meta;
  for (const v of Object.values(operation)) {
    if (isObject(v) && isObject(v.metadata)) {
      const nested = stringMap(v.metadata.labels);
      if (nested) return nested;
    }
  }
  return {};
}

function list<T>(v: T | readonly T[]): readonly T[] {
  return Array.isArray(v) ? (v as readonly T[]) : [v as T];
}

/** Refuse malformed selectors when the handler is registered, not at the first call. */
export function checkSelector(sel: Selector, where: string): void {
  const bad = (msg: string) => new Error(`${where}: invalid 'when' selector: ${msg}`);
  const nonEmptyStrings = (v: unknown, field: string) => {
    for (const s of list(v))
      if (typeof s !== 'string' || s === '') throw bad(`${field} must be non-empty strings`);
  };
  if (sel.kind !== undefined) nonEmptyStrings(sel.kind, 'kind');
  if (sel.subject !== undefined && !(sel.subject instanceof RegExp)) nonEmptyStrings(sel.subject, 'subject');
  if (sel.roles !== undefined) nonEmptyStrings(sel.roles, 'roles');
  if (sel.labels !== undefined) {
    if (!isObject(sel.labels)) throw bad('labels must be an object');
    for (const [k, v] of Object.entries(sel.labels)) {
      if (k === '') throw bad('label keys must be non-empty');
      if (v !== true) nonEmptyStrings(v, `labels.${k}`);
    }
  }
  if (sel.match !== undefined && typeof sel.match !== 'function') throw bad('match must be a function');
}

/** Whether an evaluation is in scope of a selector (every given field matches). */
export function selectorMatches(sel: Selector, input: SelectorInput): boolean {
  const p = input.principal;
  if (sel.kind !== undefined && !list(sel.kind).includes(p.kind)) return false;
  if (sel.subject !== undefined) {
    const subject = principalSubject(p);
    let ok: boolean;
    if (sel.subject instanceof RegExp) {
      sel.subject.lastIndex = 0; // a /g or /y RegExp keeps state between calls
      ok = sel.subject.test(subject);
    } else ok = list(sel.subject).includes(subject);
    if (!ok) return false;
  }
  if (sel.roles !== undefined) {
    const held = new Set(principalList(p.roles));
    if (!list(sel.roles).some((r) => held.has(r))) return false;
  }
  if (sel.labels !== undefined) {
    for (const [k, want] of Object.entries(sel.labels)) {
      const have = input.labels[k];
      if (have === undefined) return false;
      if (want !== true && !list(want).includes(have)) return false;
    }
  }
  if (sel.match !== undefined && !sel.match(input)) return false;
  return true;
}
