// Property: after arbitrary RFC 6902 operations on a valid document, checking only the
// changed paths (protocol checkChangedProtoJson, what the SDK's contract check runs) refuses
// exactly the documents the full strict parse refuses; and copying along the paths
// (copyForPatchOperation, with copies or overlays) never modifies the original. Patches are generated from the schema, so
// they hit the rules that matter: oneof members, both spellings of a field, null map values.
import {
  type CompiledField,
  type CompiledMessage,
  checkChangedProtoJson,
  copyForPatchOperation,
  formatJsonPointer,
  type JsonValue,
  LIST_VALUE,
  ProtoJsonError,
  parseProtoJson,
  ROUTES,
  STRUCT,
  schema,
  VALUE,
} from '@openshell-interceptors/protocol';
import fc from 'fast-check';
import fjp, { type Operation } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { jsonKey, jsonValue, protoJsonArbitrary, runs } from '../../protocol/src/__fixtures__/arbitrary.js';

const TYPES = [...new Set(ROUTES.flatMap((r) => [r.requestType, r.responseType]))];
const isFree = (t: string) => t === STRUCT || t === VALUE || t === LIST_VALUE;

/** Reference tokens of every location in a JSON value (the root included). */
function locations(v: unknown, at: string[] = [], out: string[][] = []): string[][] {
  out.push(at);
  if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) locations(x, [...at, k], out);
  }
  return out;
}

type Slot =
  | { kind: 'message'; m: CompiledMessage }
  | { kind: 'elements'; f: CompiledField }
  | { kind: 'other' };

/** What the schema expects at a location of a `type` document. */
function slotAt(type: string, tokens: readonly string[]): Slot {
  let slot: Slot = { kind: 'message', m: schema.message(type) };
  for (const t of tokens) {
    if (slot.kind === 'other') return slot;
    let f: CompiledField | undefined;
    let whole = true;
    if (slot.kind === 'message') {
      f = isFree(slot.m.name) ? undefined : slot.m.byName.get(t);
    } else {
      f = slot.f;
      whole = false;
    }
    if (!f) return { kind: 'other' };
    if (whole && (f.kind === 'map' || f.repeated)) slot = { kind: 'elements', f };
    else if ((f.kind === 'map' ? f.valueKind : f.kind) === 'message' && !isFree(f.type))
      slot = { kind: 'message', m: schema.message(f.type) };
    else slot = { kind: 'other' };
  }
  return slot;
}

type Gen = fc.GeneratorValue;

/** A value of the right type for one element of `f` (or a plausible wrong one now and then). */
function single(g: Gen, f: CompiledField): unknown {
  const kind = f.kind === 'map' ? f.valueKind : f.kind;
  if (kind === 'message') {
    if (f.type === VALUE) return g(() => jsonValue);
    if (f.type === LIST_VALUE) return [];
    if (f.type === STRUCT) return { a: 1 };
    return g(() => protoJsonArbitrary(f.type, { maxDepth: 2 }));
  }
  if (kind === 'enum') return g(fc.constantFrom, ...Object.keys(schema.enumValues(f.type)));
  const samples: Record<string, unknown[]> = {
    string: ['v', ''],
    bool: [true, false],
    bytes: ['AAE=', 'not base64!'],
    float: [1.5, 'NaN'],
    double: [2.25, 'Infinity'],
  };
  const ints = /64/.test(f.type) ? ['7', 7, '-1'] : [7, -1, 4294967296];
  return g(fc.constantFrom, ...(samples[f.type] ?? ints));
}

function typed(g: Gen, f: CompiledField, whole: boolean): unknown {
  if (whole && f.kind === 'map') return g(fc.boolean) ? {} : { [g(() => jsonKey)]: single(g, f) };
  if (whole && f.repeated) return g(fc.boolean) ? [] : [single(g, f)];
  return single(g, f);
}

function throwsProtoJson(f: () => void): boolean {
  try {
    f();
    return false;
  } catch (e) {
    if (e instanceof ProtoJsonError) return true;
    throw e;
  }
}

const OPS = ['add', 'add', 'add', 'replace', 'replace', 'remove', 'move', 'copy', 'test'] as const;

describe('checkChangedProtoJson under arbitrary patches', () => {
  it('refuses exactly what the full parse refuses, and the copy along the paths leaves the original intact', () => {
    const seen = { valid: 0, invalid: 0 };
    fc.assert(
      fc.property(
        fc
          .constantFrom(...TYPES)
          .chain((type) => fc.tuple(fc.constant(type), protoJsonArbitrary(type, { maxDepth: 4 }), fc.gen())),
        fc.integer({ min: 1, max: 4 }),
        ([type, original, g], count) => {
          parseProtoJson(type, original); // the precondition: a valid document
          const snapshot = structuredClone(original);
          // The same operations on real copies and on copy-on-write overlays.
          const copies = new WeakSet<object>();
          const overlays = new WeakSet<object>();
          let doc: unknown = original;
          let over: unknown = original;
          const changed: string[] = [];
          for (let n = 0; n < count; n++) {
            const here = locations(doc);
            const base = g(fc.constantFrom, ...here);
            const slot = slotAt(type, base);
            let extra: string | undefined;
            if (slot.kind === 'message' && slot.m.byName.size > 0 && g(fc.nat, 3) > 0)
              extra = g(fc.constantFrom, ...slot.m.byName.keys());
            else if (slot.kind === 'elements' && g(fc.boolean))
              extra = slot.f.kind === 'map' ? g(() => jsonKey) : g(fc.constantFrom, '-', '0', '1');
            else if (g(fc.nat, 5) === 0) extra = g(fc.constantFrom, '__proto__', 'unknownName', '0');
            const tokens = extra === undefined ? base : [...base, extra];
            const path = formatJsonPointer(tokens);
            const from = formatJsonPointer(g(fc.constantFrom, ...here));
            let target: { f: CompiledField; whole: boolean } | undefined;
            if (extra !== undefined && slot.kind === 'message') {
              const f = slot.m.byName.get(extra);
              if (f) target = { f, whole: true };
            } else if (extra !== undefined && slot.kind === 'elements') target = { f: slot.f, whole: false };
            const pick = g(fc.nat, 5);
            let value: unknown;
            if (target && pick < 3) value = typed(g, target.f, target.whole);
            else if (pick === 3) value = null;
            else value = g(() => jsonValue);
            const op = g(fc.constantFrom, ...OPS);
            // RFC 6902: a value cannot be moved into one of its own children (a cycle).
            if (op === 'move' && path.startsWith(`${from}/`)) continue;
            const apply = (d: unknown, set: WeakSet<object>, overlay: boolean): unknown => {
              const next = copyForPatchOperation(d, { op, path, from }, set, { overlay });
              const operation = { op, path, from, value: structuredClone(value as JsonValue) } as Operation;
              return fjp.applyOperation(next, operation, true, true, true).newDocument;
            };
            let a: unknown;
            try {
              a = apply(doc, copies, false);
            } catch {
              // Does not apply (the SDK and the gateway refuse it before any parse); nor on the overlay.
              expect(() => apply(over, overlays, true)).toThrow();
              continue;
            }
            over = apply(over, overlays, true);
            doc = a;
            if (op !== 'test') changed.push(path);
          }
          // The overlay reads exactly like the copy, key order included.
          expect(JSON.stringify(over)).toBe(JSON.stringify(doc));
          expect(original).toEqual(snapshot);
          const full = throwsProtoJson(() => parseProtoJson(type, doc));
          const changedOnly = throwsProtoJson(() => checkChangedProtoJson(type, doc, changed));
          expect(throwsProtoJson(() => checkChangedProtoJson(type, over, changed))).toBe(full);
          if (full) seen.invalid++;
          else seen.valid++;
          expect(changedOnly).toBe(full);
        },
      ),
      { numRuns: runs(500) },
    );
    // Both outcomes were exercised.
    expect(seen.valid).toBeGreaterThan(50);
    expect(seen.invalid).toBeGreaterThan(50);
  });

  it('follows a patch that makes a oneof hold two members or a field appear under both names', () => {
    const type = 'openshell.v1.UpdateConfigRequest';
    const withSetting = { name: 'a', settingKey: 'k', settingValue: { stringValue: 'x' } };
    parseProtoJson(type, withSetting);
    const twoMembers = { ...withSetting, settingValue: { stringValue: 'x', boolValue: true } };
    expect(() => checkChangedProtoJson(type, twoMembers, ['/settingValue/boolValue'])).toThrow(
      'is a second member',
    );
    const both = { ...withSetting, setting_key: 'k' };
    expect(() => checkChangedProtoJson(type, both, ['/setting_key'])).toThrow('given twice');
  });
});
