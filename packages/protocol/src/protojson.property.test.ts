// Property tests of the strict ProtoJSON parse (CONTRACT 4.3): whatever it accepts
// survives parse → encode → decode → render unchanged from then on, and a valid
// document keeps every non-default value it had.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allFieldNames, hostileKey, jsonValue, protoJsonArbitrary, runs } from './__fixtures__/arbitrary.js';
import type { JsonObject, JsonValue } from './gen/json.js';
import { ProtoJsonError } from './protojson.js';
import { ROUTES } from './routes.js';
import { type CompiledField, isFreeJsonType, schema } from './schema.js';
import {
  canonicalize,
  canonicalJson,
  decodeMessage,
  encodeMessage,
  parseProtoJson,
  toProtoJson,
} from './view.js';

const REQUEST_TYPES = [...new Set(ROUTES.map((r) => r.requestType))];
const requestType = fc.constantFrom(...REQUEST_TYPES);

/**
 * What canonical ProtoJSON must keep of a valid document (the oracle, written from
 * CONTRACT section 2, not from the implementation): defaults of plain scalar fields,
 * empty lists and empty maps are omitted; optional and oneof members keep presence;
 * messages are kept even when empty; free JSON is kept as is.
 */
function expectedCanonical(typeName: string, doc: JsonObject): JsonObject {
  const m = schema.message(typeName);
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(doc)) {
    const f = m.byName.get(key) as CompiledField;
    if (f.kind === 'map') {
      const entries = Object.entries(value as JsonObject);
      if (entries.length === 0) continue;
      out[f.jsonName] = Object.fromEntries(entries.map(([k, v]) => [k, single(f, v)]));
    } else if (f.repeated) {
      const items = value as JsonValue[];
      if (items.length === 0) continue;
      out[f.jsonName] = items.map((v) => single(f, v));
    } else if (f.oneof !== undefined || f.optional || f.kind === 'message' || !isDefault(f, value)) {
      out[f.jsonName] = single(f, value);
    }
  }
  return out;
}

function single(f: CompiledField, v: JsonValue): JsonValue {
  const kind = f.kind === 'map' ? f.valueKind : f.kind;
  if (kind === 'message' && !isFreeJsonType(f.type)) return expectedCanonical(f.type, v as JsonObject);
  return v;
}

function isDefault(f: CompiledField, v: JsonValue): boolean {
  if (f.kind === 'enum') return schema.enumValues(f.type)[v as string] === 0;
  if (f.type === 'string' || f.type === 'bytes') return v === '';
  if (f.type === 'bool') return v === false;
  if (/64$/.test(f.type)) return v === '0';
  return v === 0;
}

/** Values that sit on the edges of the ProtoJSON rules. */
const TRICKY: JsonValue[] = [
  '1e3',
  '-0',
  '0x10',
  ' 1',
  '1.5',
  1.5,
  2 ** 53,
  -(2 ** 53),
  '9223372036854775807',
  '9223372036854775808',
  '18446744073709551616',
  '-1',
  -1,
  4294967296,
  2147483648,
  'NaN',
  'Infinity',
  '',
  'YQ',
  'YQ==',
  'Y===',
  'a b',
  true,
  'true',
  null,
  [],
  {},
  [null],
  { a: null },
  1e39,
  3.4028235e38,
  'STATE_UNSPECIFIED',
  // What encoding changes: lone surrogates (U+FFFD on the wire), float32 underflow, -0.
  'a\ud800',
  '\udc00b',
  1e-50,
  -0,
  '-0.0',
  { '\ud800': 'x', '\udbff': 'y' },
];

const FIELD_NAMES = allFieldNames();
const mutationKey = fc.oneof(
  fc.constantFrom(...FIELD_NAMES),
  hostileKey,
  fc.constantFrom('k\ud800', 'k\udc00'),
);
const mutationValue = fc.oneof(fc.constantFrom(...TRICKY), jsonValue);

type Mutation = { at: number; key: string; value: JsonValue; remove: boolean };

/** Every object in a document (the root included), for mutations to land on. */
function objectsIn(v: JsonValue, out: Record<string, JsonValue>[] = []): Record<string, JsonValue>[] {
  if (Array.isArray(v)) for (const x of v) objectsIn(x, out);
  else if (v !== null && typeof v === 'object') {
    out.push(v);
    for (const x of Object.values(v)) objectsIn(x, out);
  }
  return out;
}

function mutate(doc: JsonObject, mutations: readonly Mutation[]): JsonObject {
  const copy = structuredClone(doc);
  for (const mu of mutations) {
    const targets = objectsIn(copy);
    const target = targets[mu.at % targets.length] as Record<string, JsonValue>;
    const keys = Object.keys(target);
    if (mu.remove && keys.length > 0) delete target[keys[mu.at % keys.length] as string];
    // A copy: the same constant inserted twice must not become a cycle.
    else
      Object.defineProperty(target, mu.key, {
        value: structuredClone(mu.value),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return copy;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  key: mutationKey,
  value: mutationValue,
  remove: fc.boolean(),
});

/** Valid documents with a few mutations, random objects over real field names, and plain JSON. */
const candidate = requestType.chain((typeName) =>
  fc.tuple(
    fc.constant(typeName),
    fc.oneof(
      {
        weight: 5,
        arbitrary: fc
          .tuple(protoJsonArbitrary(typeName), fc.array(mutation, { minLength: 1, maxLength: 3 }))
          .map(([d, ms]) => mutate(d, ms) as JsonValue),
      },
      {
        weight: 2,
        arbitrary: fc
          .array(fc.tuple(mutationKey, mutationValue), { maxLength: 4 })
          .map((e) => Object.fromEntries(e) as JsonValue),
      },
      { weight: 1, arbitrary: jsonValue },
    ),
  ),
);

describe('strict ProtoJSON parse (property)', () => {
  it('accepts every valid generated request, and canonicalize keeps every non-default value', () => {
    fc.assert(
      fc.property(
        requestType.chain((t) => fc.tuple(fc.constant(t), protoJsonArbitrary(t))),
        ([typeName, doc]) => {
          const c = canonicalize(typeName, doc);
          expect(c.json).toEqual(expectedCanonical(typeName, doc));
        },
      ),
      { numRuns: runs(300) },
    );
  });

  it('never accepts what cannot round-trip: accepted input re-canonicalizes to itself and encode/decode is stable', () => {
    let accepted = 0;
    fc.assert(
      fc.property(candidate, ([typeName, json]) => {
        let message: unknown;
        try {
          message = parseProtoJson(typeName, json);
        } catch (e) {
          // Refusals are always ProtoJsonError with a JSON Pointer, never a crash.
          expect(e).toBeInstanceOf(ProtoJsonError);
          expect((e as ProtoJsonError).path === '' || (e as ProtoJsonError).path.startsWith('/')).toBe(true);
          return;
        }
        accepted++;
        const once = canonicalize(typeName, json);
        const twice = canonicalize(typeName, once.json);
        expect(twice.json).toEqual(once.json);
        expect(twice.message).toEqual(once.message);
        expect(decodeMessage(typeName, encodeMessage(typeName, once.message))).toEqual(once.message);
        // What was accepted becomes the same message as its canonical form.
        expect(decodeMessage(typeName, encodeMessage(typeName, message))).toEqual(once.message);
      }),
      { numRuns: runs(300) },
    );
    // The generator must reach the accepting side too, or the property proves nothing.
    expect(accepted).toBeGreaterThan(0);
  });

  it('canonicalJson (parse, render) gives exactly what canonicalize (parse, encode, decode, render) gives', () => {
    let accepted = 0;
    fc.assert(
      fc.property(candidate, ([typeName, json]) => {
        let full: ReturnType<typeof canonicalize>;
        try {
          full = canonicalize(typeName, json);
        } catch (e) {
          // Refused by both, with the same error.
          expect(() => canonicalJson(typeName, json)).toThrow((e as Error).message);
          return;
        }
        accepted++;
        const fast = canonicalJson(typeName, json);
        expect(fast.json).toEqual(full.json);
        expect(toProtoJson(typeName, fast.message)).toEqual(full.json);
        expect(toProtoJson(typeName, fast.message, { removeSecrets: true })).toEqual(
          toProtoJson(typeName, full.message, { removeSecrets: true }),
        );
      }),
      { numRuns: runs(600) },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it.each([
    [
      'lone surrogates in strings and map keys (the last of two keys that become one wins)',
      'openshell.v1.CreateSandboxRequest',
      { name: 'a\ud800', labels: { 'k\udc00': 'v', 'k\ud800': 'w' } },
      { name: 'a\ufffd', labels: { 'k\ufffd': 'w' } },
    ],
    [
      'a float32 too small to keep, and one rounded',
      'openshell.v1.SubmitPolicyAnalysisRequest',
      { proposedChunks: [{ confidence: 1e-50 }, { confidence: 0.1 }] },
      { proposedChunks: [{}, { confidence: 0.1 }] },
    ],
  ])('canonicalJson agrees with the wire round trip on %s', (_, t, doc, expected) => {
    expect(canonicalize(t, doc).json).toEqual(expected);
    expect(canonicalJson(t, doc).json).toEqual(expected);
  });

  it.each([
    ['a map', '{"name":"a","labels":{"__proto__":"x"}}', '/labels/__proto__'],
    [
      'a Struct',
      '{"spec":{"template":{"resources":{"__proto__":{"polluted":true}}}}}',
      '/spec/template/resources/__proto__',
    ],
    [
      'nested free JSON',
      '{"spec":{"template":{"driverConfig":{"a":[{"__proto__":1}]}}}}',
      '/spec/template/driverConfig/a/0/__proto__',
    ],
  ])('refuses a "__proto__" key in %s, which would vanish on decode', (_, text, path) => {
    const err = (() => {
      try {
        canonicalize('openshell.v1.CreateSandboxRequest', JSON.parse(text));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ProtoJsonError);
    expect((err as ProtoJsonError).path).toBe(path);
    expect((err as ProtoJsonError).message).toContain('cannot be represented');
  });
});
