// Schema-driven fast-check arbitraries: valid canonical ProtoJSON of any message in the schema,
// with every string inside a secret field carrying a marker (so a leak can be searched for).
// Shared by the property tests of protocol, gateway and sdk.
import fc from 'fast-check';
import type { JsonObject, JsonValue } from '../gen/json.js';
import { type CompiledField, isFreeJsonType, LIST_VALUE, STRUCT, schema, VALUE } from '../schema.js';

export interface ProtoArbitraryOptions {
  /** Message nesting depth below the root (default 3); deeper message fields are left out. */
  readonly maxDepth?: number;
  /** Every string (and map key) inside a secret field starts with this. Default `SECRET-MARKER`. */
  readonly secretMarker?: string;
}

export const DEFAULT_SECRET_MARKER = '\u2603SECRET-MARKER\u2603';

/** Run counts: modest by default, large when FUZZ=long (or SOAK=long). */
export function runs(normal: number): number {
  const long = process.env.FUZZ === 'long' || process.env.SOAK === 'long';
  return long ? normal * 20 : normal;
}

/**
 * Keys that stress plain-object handling: prototype names, escapes of JSON Pointer, empties.
 * `__proto__` is not among them: the strict parse refuses it (it cannot survive a decode).
 */
const TRICKY_KEYS = ['constructor', 'toString', 'hasOwnProperty', '', 'a/b', 'm~n', '0'];

/** A key for free-form JSON objects or string maps. */
export const jsonKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__') },
  { weight: 1, arbitrary: fc.constantFrom(...TRICKY_KEYS) },
);

/** Any key, `__proto__` included (for inputs that may be refused). */
export const hostileKey: fc.Arbitrary<string> = fc.oneof(jsonKey, fc.constant('__proto__'));

/** An object with own properties only, `__proto__` included (Object.fromEntries defines, never sets). */
function objectOf<T>(key: fc.Arbitrary<string>, value: fc.Arbitrary<T>, maxKeys = 4) {
  return fc
    .uniqueArray(fc.tuple(key, value), { maxLength: maxKeys, selector: ([k]) => k })
    .map((entries) => Object.fromEntries(entries) as Record<string, T>);
}

const jsonNumber = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Arbitrary JSON (finite numbers, own keys only, prototype-ish keys included). */
export const jsonValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    jsonNumber,
    fc.string({ maxLength: 8 }),
    fc.array(tie('value'), { maxLength: 3 }),
    objectOf(jsonKey, tie('value'), 3),
  ),
})).value;

export const jsonObject: fc.Arbitrary<JsonObject> = objectOf(jsonKey, jsonValue, 4);

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function scalarArb(type: string, secret: boolean, marker: string): fc.Arbitrary<JsonValue> {
  switch (type) {
    case 'string':
      return secret ? fc.string({ maxLength: 6 }).map((s) => `${marker}${s}`) : fc.string({ maxLength: 8 });
    case 'bool':
      return fc.boolean();
    case 'bytes':
      return fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b).toString('base64'));
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'uint32':
    case 'fixed32':
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return fc.bigInt({ min: INT64_MIN, max: INT64_MAX }).map(String);
    case 'uint64':
    case 'fixed64':
      return fc.bigInt({ min: 0n, max: UINT64_MAX }).map(String);
    case 'float':
      // Exactly representable in float32 with a short decimal form, so canonical JSON keeps it as is.
      return fc.oneof(
        fc.integer({ min: -(2 ** 20), max: 2 ** 20 }).map((n) => n / 4),
        fc.constantFrom('NaN', 'Infinity', '-Infinity'),
      );
    case 'double':
      return fc.oneof(
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.constantFrom('NaN', 'Infinity', '-Infinity'),
      );
    default:
      throw new Error(`arbitrary: unsupported scalar type ${type}`);
  }
}

class Builder {
  private readonly memo = new Map<string, fc.Arbitrary<JsonObject>>();
  constructor(
    private readonly maxDepth: number,
    private readonly marker: string,
  ) {}

  message(typeName: string, depth: number, secret: boolean): fc.Arbitrary<JsonObject> {
    if (typeName === STRUCT) return jsonObject;
    const key = `${typeName}|${depth}|${secret}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    const m = schema.message(typeName);
    const plain: Record<string, fc.Arbitrary<JsonValue>> = {};
    const oneofs = new Map<string, CompiledField[]>();
    for (const f of m.fields) {
      const arb = this.field(f, depth, secret || f.secret === true);
      if (!arb) continue;
      if (f.oneof !== undefined) {
        const group = oneofs.get(f.oneof) ?? [];
        group.push(f);
        oneofs.set(f.oneof, group);
      } else {
        plain[f.jsonName] = arb;
      }
    }
    // A oneof gets at most one member.
    const groups = [...oneofs.values()].map((members) =>
      fc.option(
        fc.oneof(
          ...members.map((f) =>
            (this.field(f, depth, secret || f.secret === true) as fc.Arbitrary<JsonValue>).map(
              (v): JsonObject => ({ [f.jsonName]: v }),
            ),
          ),
        ),
        { nil: undefined },
      ),
    );
    const arb = fc
      .tuple(fc.record(plain, { requiredKeys: [] }), ...groups)
      .map(([base, ...picked]) => Object.assign({}, base, ...picked.filter(Boolean)) as JsonObject);
    this.memo.set(key, arb);
    return arb;
  }

  /** The arbitrary for one field's JSON value, or undefined when it is left out (too deep). */
  private field(f: CompiledField, depth: number, secret: boolean): fc.Arbitrary<JsonValue> | undefined {
    const valueKind = f.kind === 'map' ? (f.valueKind ?? 'scalar') : f.kind;
    let single: fc.Arbitrary<JsonValue>;
    if (valueKind === 'message') {
      if (f.type === VALUE) single = jsonValue;
      else if (f.type === LIST_VALUE) single = fc.array(jsonValue, { maxLength: 3 });
      else if (isFreeJsonType(f.type)) single = jsonObject;
      else if (depth >= this.maxDepth) return undefined;
      else single = this.message(f.type, depth + 1, secret);
    } else if (valueKind === 'enum') {
      single = fc.constantFrom(...Object.keys(schema.enumValues(f.type)));
    } else {
      single = scalarArb(f.type, secret, this.marker);
    }
    if (f.kind === 'map') {
      const key = secret ? fc.string({ maxLength: 4 }).map((s) => `${this.marker}${s}`) : jsonKey;
      return objectOf(key, single, 3);
    }
    if (f.repeated) return fc.array(single, { maxLength: 3 });
    return single;
  }
}

/** Valid ProtoJSON of `typeName` (json names, canonical scalar forms; defaults may be present). */
export function protoJsonArbitrary(
  typeName: string,
  options: ProtoArbitraryOptions = {},
): fc.Arbitrary<JsonObject> {
  return new Builder(options.maxDepth ?? 3, options.secretMarker ?? DEFAULT_SECRET_MARKER).message(
    typeName,
    0,
    false,
  );
}

/** Every field name (json and proto spellings) of every message: realistic wrong keys for fuzzing. */
export function allFieldNames(): string[] {
  const names = new Set<string>();
  for (const name of Object.keys(schema.table.messages)) {
    for (const f of schema.message(name).fields) {
      names.add(f.jsonName);
      names.add(f.name);
    }
  }
  return [...names].sort();
}
