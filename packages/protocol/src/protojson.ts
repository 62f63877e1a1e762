import type { JsonObject, JsonValue } from './gen/json.js';
import {
  type CompiledField,
  type CompiledMessage,
  isFreeJsonType,
  LIST_VALUE,
  type Schema,
  STRUCT,
  VALUE,
} from './schema.js';

/**
 * Canonical ProtoJSON, driven by the generated schema rather than ts-proto's
 * lenient JSON methods. Messages on the TypeScript side are ts-proto objects
 * (int64 as decimal strings, bytes as Buffer, enums as numbers, Struct fields
 * unwrapped to plain objects, oneof members as flat optional properties).
 */

/** A ProtoJSON value that cannot become the requested message. `path` is a JSON Pointer. */
export class ProtoJsonError extends Error {
  readonly path: string;
  readonly problem: string;
  constructor(path: string, problem: string) {
    super(`${path === '' ? '(root)' : path}: ${problem}`);
    this.name = 'ProtoJsonError';
    this.path = path;
    this.problem = problem;
  }
}

export interface ToJsonOptions {
  /** Remove every field marked `(openshell.options.v1.secret)`, at any depth. Default false. */
  readonly removeSecrets?: boolean;
}

const INT64 = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64 = new Set(['uint64', 'fixed64']);
const INT32 = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32 = new Set(['uint32', 'fixed32']);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const FLOAT_MAX = 3.4028234663852886e38;
const INTEGER_STRING = /^-?(0|[1-9]\d*)$/;
const NUMBER_STRING = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/\-_]{4})*(?:[A-Za-z0-9+/\-_]{2}(?:==)?|[A-Za-z0-9+/\-_]{3}=?)?$/;

/** Shortest decimal that reads back as the same float32: what protobuf prints for `float`. */
function float32Json(v: number): number {
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(f.toPrecision(p));
    if (Math.fround(candidate) === f) return candidate;
  }
  return f;
}

type WellFormedApi = string & { isWellFormed(): boolean; toWellFormed(): string };
/**
 * Encoding to UTF-8 turns a lone surrogate into U+FFFD. The parse does it first, so that
 * parse → render already equals parse → encode → decode → render (see `canonicalJson`).
 */
const wellFormed = (s: string): string =>
  (s as WellFormedApi).isWellFormed() ? s : (s as WellFormedApi).toWellFormed();

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function cloneJson(v: unknown, path: string): JsonValue {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'string') return wellFormed(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ProtoJsonError(path, `a JSON value cannot hold the number ${v}`);
    return v;
  }
  if (Array.isArray(v)) return v.map((x, i) => cloneJson(x, `${path}/${i}`));
  if (isPlainObject(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      if (k === PROTO_KEY) throw new ProtoJsonError(`${path}/${k}`, PROTO_KEY_PROBLEM);
      out[wellFormed(k)] = cloneJson(x, `${path}/${escapeToken(k)}`);
    }
    return out;
  }
  throw new ProtoJsonError(path, `a JSON value cannot hold ${typeof v}`);
}

// Assigning "__proto__" on a plain object sets its prototype instead of a key, and the
// generated decoders do exactly that, so such a key would vanish on the way through.
const PROTO_KEY = '__proto__';
const PROTO_KEY_PROBLEM = 'the key "__proto__" cannot be represented (it would be dropped on decode)';

const escapeToken = (t: string) => t.replace(/~/g, '~0').replace(/\//g, '~1');

interface PathNode {
  readonly parent: Path;
  readonly token: string | number;
}
type Path = PathNode | undefined;

function pointer(path: Path): string {
  const tokens: string[] = [];
  for (let p = path; p; p = p.parent) tokens.push(`/${escapeToken(String(p.token))}`);
  return tokens.reverse().join('');
}

const err = (path: Path, problem: string) => new ProtoJsonError(pointer(path), problem);

function badScalar(what: string, raw: unknown, path: Path, mapKey: boolean): never {
  const shown =
    typeof raw === 'string' ? JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw) : typeof raw;
  throw err(path, `expected ${what}${mapKey ? ' as map key' : ''}, got ${shown}`);
}

export class ProtoJson {
  private readonly factories = new WeakMap<CompiledMessage, () => Record<string, unknown>>();

  constructor(private readonly schema: Schema) {}

  /** ts-proto message → canonical ProtoJSON (defaults omitted, presence kept for optional and oneof members). */
  toJson(typeName: string, message: unknown, options: ToJsonOptions = {}): JsonObject {
    return this.messageToJson(this.schema.message(typeName), message, options.removeSecrets === true);
  }

  private messageToJson(m: CompiledMessage, msg: unknown, removeSecrets: boolean): JsonObject {
    if (m.name === STRUCT) return cloneJson(msg ?? {}, '') as JsonObject;
    const src = msg as Record<string, unknown>;
    const out: JsonObject = {};
    for (const f of m.fields) {
      if (removeSecrets && f.secret) continue;
      const v = src[f.prop];
      if (v === undefined || v === null) continue;
      if (f.kind === 'map') {
        const o: JsonObject = {};
        let empty = true;
        // string → string maps (labels, environment, annotations) are most of a large operation.
        const plain = f.valueKind === 'scalar' && f.type === 'string';
        for (const k in v as Record<string, unknown>) {
          if (!Object.hasOwn(v as object, k)) continue;
          const x = (v as Record<string, unknown>)[k];
          o[k] = plain ? (x as string) : this.singleToJson(f, x, removeSecrets);
          empty = false;
        }
        if (empty) continue;
        out[f.jsonName] = o;
      } else if (f.repeated) {
        const arr = v as unknown[];
        if (arr.length === 0) continue;
        out[f.jsonName] = arr.map((x) => this.singleToJson(f, x, removeSecrets));
      } else if (f.oneof !== undefined || f.optional || f.kind === 'message') {
        out[f.jsonName] = this.singleToJson(f, v, removeSecrets);
      } else if (!isDefaultScalar(f, v)) {
        out[f.jsonName] = this.singleToJson(f, v, removeSecrets);
      }
    }
    return out;
  }

  private singleToJson(f: CompiledField, v: unknown, removeSecrets: boolean): JsonValue {
    const kind = f.kind === 'map' ? f.valueKind : f.kind;
    if (kind === 'enum') return this.schema.enumName(f.type, v as number) ?? (v as number);
    if (kind === 'message') {
      if (isFreeJsonType(f.type)) return cloneJson(v, '');
      return this.messageToJson(this.schema.message(f.type), v, removeSecrets);
    }
    switch (f.type) {
      case 'bytes':
        return Buffer.from(v as Uint8Array).toString('base64');
      case 'float':
      case 'double': {
        const n = v as number;
        if (Number.isNaN(n)) return 'NaN';
        if (n === Number.POSITIVE_INFINITY) return 'Infinity';
        if (n === Number.NEGATIVE_INFINITY) return '-Infinity';
        return f.type === 'float' ? float32Json(n) : n;
      }
      default:
        if (INT64.has(f.type) || UINT64.has(f.type)) return String(v);
        return v as JsonValue;
    }
  }

  /**
   * Strict ProtoJSON → ts-proto message. Unknown names, type mismatches, out-of-range
   * numbers, unknown enum names and two members of one oneof are errors naming the path.
   * `null` means "default" (for `google.protobuf.Value` it is the JSON null).
   */
  parse(typeName: string, json: unknown): unknown {
    return this.parseMessage(this.schema.message(typeName), json, undefined);
  }

  // Paths are linked lists turned into a JSON Pointer only when an error is thrown:
  // formatting one per field would dominate the cost of a successful parse.
  private parseMessage(m: CompiledMessage, json: unknown, path: Path): unknown {
    if (m.name === STRUCT) {
      if (!isPlainObject(json)) throw err(path, 'expected a JSON object (google.protobuf.Struct)');
      return cloneJson(json, pointer(path));
    }
    if (m.name === LIST_VALUE) {
      if (!Array.isArray(json)) throw err(path, 'expected a JSON array (google.protobuf.ListValue)');
      return cloneJson(json, pointer(path));
    }
    if (!isPlainObject(json)) throw err(path, `expected a JSON object for ${m.name}`);
    const out = this.defaults(m);
    let oneofs: Map<string, string> | undefined;
    for (const key in json) {
      if (!Object.hasOwn(json, key)) continue;
      const raw = json[key];
      const f = m.byName.get(key);
      if (!f) throw err({ parent: path, token: key }, `unknown field "${key}" in ${m.name}`);
      if (key !== f.jsonName && Object.hasOwn(json, f.jsonName)) {
        throw err(
          { parent: path, token: key },
          `field ${f.name} given twice (as "${f.jsonName}" and "${key}")`,
        );
      }
      const isValueField = f.kind === 'message' && f.type === VALUE && !f.repeated;
      if (raw === null && !isValueField) continue;
      if (f.oneof !== undefined) {
        oneofs ??= new Map();
        const other = oneofs.get(f.oneof);
        if (other !== undefined) {
          throw err(
            { parent: path, token: key },
            `oneof "${f.oneof}" already has "${other}"; "${key}" is a second member`,
          );
        }
        oneofs.set(f.oneof, key);
      }
      out[f.prop] = this.parseField(f, raw, path, key);
    }
    return out;
  }

  /**
   * Strictly check `doc`, a `typeName` document that parsed before RFC 6902 operations changed
   * it at `changed` (the operations' paths as reference tokens), looking only at what those
   * changes can have touched: the value at each path, and the rules of its parent (unknown
   * field, a field given twice, two members of one oneof, null map values). A change inside a
   * list or free JSON re-checks that whole field. Throws like `parse` when the document no
   * longer parses (the reported problem may be another one when there are several); a change
   * this cannot follow (the root, a shape the schema does not expect) falls back to `parse`.
   */
  checkChanged(typeName: string, doc: unknown, changed: readonly (readonly string[])[]): void {
    for (const tokens of changed) {
      if (!this.checkChangedAt(this.schema.message(typeName), doc, tokens)) {
        this.parse(typeName, doc);
        return;
      }
    }
  }

  /** One changed path; false when only a full parse can tell. */
  private checkChangedAt(root: CompiledMessage, doc: unknown, tokens: readonly string[]): boolean {
    if (tokens.length === 0 || isFreeJsonType(root.name)) return false;
    let m = root;
    let node: unknown = doc;
    let path: Path;
    for (let i = 0; ; i++) {
      if (!isPlainObject(node)) return false;
      const key = tokens[i] as string;
      if (!Object.hasOwn(node, key)) return true; // removed, or never reached: nothing to check
      const f = m.byName.get(key);
      const raw = node[key];
      if (!f || i === tokens.length - 1) {
        this.checkMember(m, node, key, path);
        return true;
      }
      if (f.kind === 'map') {
        if (!isPlainObject(raw)) {
          this.checkMember(m, node, key, path);
          return true;
        }
        const mapPath: PathNode = { parent: path, token: key };
        i++;
        const k = tokens[i] as string;
        if (!Object.hasOwn(raw, k)) return true;
        const x = raw[k];
        const valueKind = f.valueKind ?? 'scalar';
        const walk =
          i < tokens.length - 1 && valueKind === 'message' && !isFreeJsonType(f.type) && isPlainObject(x);
        if (!walk) {
          if (k === PROTO_KEY) throw err({ parent: mapPath, token: k }, PROTO_KEY_PROBLEM);
          if (x === null && !(valueKind === 'message' && f.type === VALUE))
            throw err({ parent: mapPath, token: k }, 'a map value cannot be null');
          this.parseSingle(valueKind, f.type, x, mapPath, k);
          return true;
        }
        m = this.schema.message(f.type);
        node = x;
        path = { parent: mapPath, token: k };
        continue;
      }
      // Below a list, free JSON or a scalar, or a value that is not an object: the whole member.
      if (f.repeated || f.kind !== 'message' || isFreeJsonType(f.type) || !isPlainObject(raw)) {
        this.checkMember(m, node, key, path);
        return true;
      }
      m = this.schema.message(f.type);
      node = raw;
      path = { parent: path, token: key };
    }
  }

  /** What `parseMessage` checks for one member `key` of message `json`, given the rest was valid. */
  private checkMember(m: CompiledMessage, json: Record<string, unknown>, key: string, path: Path): void {
    const f = m.byName.get(key);
    if (!f) throw err({ parent: path, token: key }, `unknown field "${key}" in ${m.name}`);
    const twice = key !== f.jsonName ? f.jsonName : f.name !== f.jsonName ? f.name : undefined;
    if (twice !== undefined && Object.hasOwn(json, twice)) {
      const other = key === f.jsonName ? twice : key;
      throw err(
        { parent: path, token: other },
        `field ${f.name} given twice (as "${f.jsonName}" and "${other}")`,
      );
    }
    const raw = json[key];
    if (raw === null && !isValueField(f)) return;
    if (f.oneof !== undefined) {
      for (const k in json) {
        if (k === key || !Object.hasOwn(json, k)) continue;
        const g = m.byName.get(k);
        if (g?.oneof === f.oneof && g !== f && !(json[k] === null && !isValueField(g))) {
          throw err(
            { parent: path, token: key },
            `oneof "${f.oneof}" already has "${k}"; "${key}" is a second member`,
          );
        }
      }
    }
    this.parseField(f, raw, path, key);
  }

  private parseField(f: CompiledField, raw: unknown, parent: Path, token: string): unknown {
    if (f.kind === 'map') {
      const path: PathNode = { parent, token };
      if (!isPlainObject(raw)) throw err(path, `expected a JSON object for map field ${f.name}`);
      const o: Record<string, unknown> = {};
      const valueKind = f.valueKind ?? 'scalar';
      for (const k in raw) {
        if (!Object.hasOwn(raw, k)) continue;
        const x = raw[k];
        if (k === PROTO_KEY) throw err({ parent: path, token: k }, PROTO_KEY_PROBLEM);
        if (f.mapKey !== 'string') this.parseScalar(f.mapKey ?? 'string', k, path, k, true);
        if (x === null && !(valueKind === 'message' && f.type === VALUE)) {
          throw err({ parent: path, token: k }, 'a map value cannot be null');
        }
        o[wellFormed(k)] = this.parseSingle(valueKind, f.type, x, path, k);
      }
      return o;
    }
    const kind = f.kind as 'scalar' | 'enum' | 'message';
    if (f.repeated) {
      const path: PathNode = { parent, token };
      if (!Array.isArray(raw)) throw err(path, `expected a JSON array for repeated field ${f.name}`);
      const out = new Array<unknown>(raw.length);
      for (let i = 0; i < raw.length; i++) {
        const x: unknown = raw[i];
        if (x === null && f.type !== VALUE)
          throw err({ parent: path, token: i }, 'a list item cannot be null');
        out[i] = this.parseSingle(kind, f.type, x, path, i);
      }
      return out;
    }
    return this.parseSingle(kind, f.type, raw, parent, token);
  }

  // (parent, token) rather than a path node: most values are scalars that never need one.
  private parseSingle(
    kind: 'scalar' | 'enum' | 'message',
    type: string,
    raw: unknown,
    parent: Path,
    token: string | number,
  ): unknown {
    if (kind === 'message') {
      const path: PathNode = { parent, token };
      if (type === VALUE) return cloneJson(raw, pointer(path));
      return this.parseMessage(this.schema.message(type), raw, path);
    }
    if (kind === 'enum') {
      if (typeof raw === 'string') {
        const n = this.schema.enumValues(type)[raw];
        if (n === undefined) throw err({ parent, token }, `"${raw}" is not a value of enum ${type}`);
        return n;
      }
      if (typeof raw === 'number' && Number.isInteger(raw) && raw >= -(2 ** 31) && raw < 2 ** 31) return raw;
      throw err({ parent, token }, `expected an enum value name of ${type}`);
    }
    return this.parseScalar(type, raw, parent, token, false);
  }

  private parseScalar(
    type: string,
    raw: unknown,
    parent: Path,
    token: string | number,
    mapKey: boolean,
  ): unknown {
    const bad = (what: string): never => badScalar(what, raw, { parent, token }, mapKey);
    switch (type) {
      case 'string':
        return typeof raw === 'string' ? wellFormed(raw) : bad('a string');
      case 'bool':
        if (typeof raw === 'boolean') return raw;
        if (mapKey && (raw === 'true' || raw === 'false')) return raw === 'true';
        return bad('true or false');
      case 'bytes': {
        if (typeof raw !== 'string' || !BASE64.test(raw)) return bad('base64 bytes');
        return Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      }
      case 'float':
      case 'double': {
        let n: number;
        if (typeof raw === 'number') n = raw;
        else if (raw === 'NaN') return Number.NaN;
        else if (raw === 'Infinity') return Number.POSITIVE_INFINITY;
        else if (raw === '-Infinity') return Number.NEGATIVE_INFINITY;
        else if (typeof raw === 'string' && NUMBER_STRING.test(raw)) n = Number(raw);
        else return bad(`a number (${type})`);
        if (!Number.isFinite(n) || (type === 'float' && Math.abs(n) > FLOAT_MAX))
          return bad(`a ${type} in range`);
        // The precision a float keeps on the wire (a tiny value becomes 0, the default).
        return type === 'float' ? Math.fround(n) : n;
      }
      default:
        break;
    }
    if (INT64.has(type) || UINT64.has(type)) {
      let big: bigint;
      if (typeof raw === 'number') {
        if (!Number.isInteger(raw)) return bad(`an integer (${type})`);
        if (!Number.isSafeInteger(raw))
          return bad(`an exact integer (${type}); send large values as strings`);
        if (raw >= 0 || !UINT64.has(type)) return String(raw);
        big = BigInt(raw);
      } else if (typeof raw === 'string' && INTEGER_STRING.test(raw)) {
        // Short decimal strings are in range for every 64-bit type but the sign check.
        if (raw === '-0') return '0';
        if (raw.length < 16 && (raw[0] !== '-' || !UINT64.has(type))) return raw;
        big = BigInt(raw);
      } else if (typeof raw === 'string' && NUMBER_STRING.test(raw) && Number.isInteger(Number(raw))) {
        // Exponent or fraction notation of an integral value, e.g. "1e3" or "5.0".
        if (!Number.isSafeInteger(Number(raw))) return bad(`an exact integer (${type})`);
        big = BigInt(Number(raw));
      } else return bad(`an integer (${type}) as number or decimal string`);
      const [min, max] = UINT64.has(type) ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
      if (big < min || big > max) return bad(`a ${type} in range`);
      return big.toString();
    }
    if (INT32.has(type) || UINT32.has(type)) {
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'string' && NUMBER_STRING.test(raw)) n = Number(raw);
      else return bad(`an integer (${type})`);
      if (!Number.isInteger(n)) return bad(`an integer (${type})`);
      const ok = UINT32.has(type) ? n >= 0 && n <= 0xffffffff : n >= -(2 ** 31) && n < 2 ** 31;
      if (!ok) return bad(`a ${type} in range`);
      return n === 0 ? 0 : n; // -0 is 0 on the wire
    }
    throw err({ parent, token }, `unsupported scalar type ${type}`);
  }

  /** A ts-proto message with every field at its default, as ts-proto's `create()` builds it. */
  defaults(m: CompiledMessage): Record<string, unknown> {
    let make = this.factories.get(m);
    if (!make) {
      make = defaultsFactory(m);
      this.factories.set(m, make);
    }
    return make();
  }
}

const isValueField = (f: CompiledField) => f.kind === 'message' && f.type === VALUE && !f.repeated;

// Built once per message type, so a parse does not re-derive each field's default.
// Objects are built by assignment in field order, which keeps one hidden class per type.
function defaultsFactory(m: CompiledMessage): () => Record<string, unknown> {
  const plan: [string, unknown, (() => unknown) | undefined][] = m.fields.map((f) => {
    if (f.kind === 'map') return [f.prop, undefined, () => ({})];
    if (f.repeated) return [f.prop, undefined, () => []];
    if (f.kind === 'message' || f.oneof !== undefined || f.optional) return [f.prop, undefined, undefined];
    if (f.kind === 'enum') return [f.prop, 0, undefined];
    if (f.type === 'bytes') return [f.prop, undefined, () => Buffer.alloc(0)];
    return [f.prop, defaultScalar(f.type), undefined];
  });
  return () => {
    const out: Record<string, unknown> = {};
    for (const [prop, value, make] of plan) out[prop] = make ? make() : value;
    return out;
  };
}

function defaultScalar(type: string): unknown {
  if (type === 'string') return '';
  if (type === 'bool') return false;
  if (type === 'bytes') return Buffer.alloc(0);
  if (INT64.has(type) || UINT64.has(type)) return '0';
  return 0;
}

function isDefaultScalar(f: CompiledField, v: unknown): boolean {
  if (f.kind === 'enum') return v === 0;
  switch (f.type) {
    case 'string':
      return v === '';
    case 'bool':
      return v === false;
    case 'bytes':
      return (v as Uint8Array).length === 0;
    case 'float':
    case 'double':
      // ts-proto does not encode -0 either, so it reads back as the default.
      return v === 0;
    default:
      if (INT64.has(f.type) || UINT64.has(f.type)) return v === '0' || v === 0;
      return v === 0;
  }
}
