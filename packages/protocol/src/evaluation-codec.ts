// The Evaluate call on the wire, without the generated code's intermediate objects.
//
// ts-proto encodes a google.protobuf.Struct by wrapping every JSON value in a `Value`
// object, every key in an entry object, and by forking a writer for every nested message;
// its decoder builds the same objects and unwraps them again. The operation inside an
// evaluation is a whole request or response (kilobytes to megabytes of JSON), so the
// gateway (encode) and the SDK (decode) use this codec instead. Its contract, held by
// property tests over arbitrary JSON and arbitrary bytes:
//   - `encodeEvaluation` writes exactly the bytes `InterceptorEvaluation.encode` writes, and
//     `encodeResult` those of `InterceptorResult.encode` (the SDK's reply, whose patch values
//     are `Value`s: the same writer, and one pooled buffer instead of two fresh ones);
//   - `decodeEvaluation` returns a value equal to `InterceptorEvaluation.decode`'s, and throws
//     where it throws (same reader, same rules for unknown fields, repeated fields, empty
//     `Value`s and the recursion limit).
import { BinaryReader } from '@bufbuild/protobuf/wire';
import type {
  InterceptorEvaluation,
  InterceptorResult,
  JsonPatch,
} from './gen/openshell/gateway_interceptor/v1/gateway_interceptor.js';

type JsonMap = { [key: string]: unknown };

// ── encode ──────────────────────────────────────────────────────────────────────────────
//
// Two passes over the value: the first measures every nested message and string (in the
// order the second pass meets them), the second writes into one buffer of the exact size.

const varintSize = (n: number): number =>
  n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;

/** Own keys as ts-proto's Struct.wrap copies them: "__proto__" cannot survive that copy. */
const structKeys = (o: object): string[] => {
  const keys = Object.keys(o);
  return keys.includes('__proto__') ? keys.filter((k) => k !== '__proto__') : keys;
};

/** UTF-8 length as TextEncoder counts it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(s: string): number {
  // Long strings: the native count is faster than a loop.
  if (s.length > 64) return Buffer.byteLength(s, 'utf8');
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // a pair: 4 bytes for 2 units
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

class Measure {
  /** Sizes of nested messages and strings, in writing order. */
  readonly sizes: number[] = [];

  private str(s: string): number {
    const n = utf8Length(s);
    this.sizes.push(n);
    return varintSize(n) + n;
  }

  /** Reserve the size of a nested message; `close` fills it in and returns tag + length + body. */
  private open(): number {
    this.sizes.push(0);
    return this.sizes.length - 1;
  }

  private close(slot: number, body: number): number {
    this.sizes[slot] = body;
    return 1 + varintSize(body) + body;
  }

  value(v: unknown): number {
    if (v === null || typeof v === 'boolean') return 2;
    if (typeof v === 'number') return 9;
    if (typeof v === 'string') return 1 + this.str(v);
    if (Array.isArray(v)) {
      const slot = this.open();
      let n = 0;
      for (let i = 0; i < v.length; i++) {
        const item = this.open();
        n += this.close(item, this.value(v[i]));
      }
      return this.close(slot, n);
    }
    if (typeof v === 'object') {
      const slot = this.open();
      return this.close(slot, this.struct(v as JsonMap));
    }
    if (v === undefined) return 0;
    throw new Error(`Unsupported any value type: ${typeof v}`);
  }

  struct(o: JsonMap): number {
    let n = 0;
    for (const k of structKeys(o)) {
      const v = o[k];
      if (v === undefined) continue;
      const entry = this.open();
      let e = k === '' ? 0 : 1 + this.str(k);
      const value = this.open();
      e += this.close(value, this.value(v));
      n += this.close(entry, e);
    }
    return n;
  }

  mapEntry(k: string, v: string): number {
    const entry = this.open();
    return this.close(entry, (k === '' ? 0 : 1 + this.str(k)) + (v === '' ? 0 : 1 + this.str(v)));
  }

  field(s: string): number {
    return s === '' ? 0 : 1 + this.str(s);
  }

  /** A JsonPatch message (op 1, path 2, value 3, from 4). */
  patch(p: JsonPatch): number {
    const slot = this.open();
    let n = this.field(p.op) + this.field(p.path);
    if (p.value !== undefined) {
      const value = this.open();
      n += this.close(value, this.value(p.value));
    }
    return this.close(slot, n + this.field(p.from));
  }

  /** A phase message: its Struct fields (numbers 1, 2) left out when undefined. */
  phase(structs: readonly (JsonMap | undefined)[]): number {
    const slot = this.open();
    let n = 0;
    for (const s of structs) {
      if (s === undefined) continue;
      const field = this.open();
      n += this.close(field, this.struct(s));
    }
    return this.close(slot, n);
  }
}

class Write {
  private i = 0;
  pos = 0;
  constructor(
    readonly buf: Buffer,
    private readonly sizes: readonly number[],
  ) {}

  private varint(n: number): void {
    while (n > 0x7f) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  private str(tag: number, s: string): void {
    const n = this.sizes[this.i++] as number;
    const buf = this.buf;
    buf[this.pos++] = tag;
    this.varint(n);
    if (n === s.length && n <= 64) {
      // ASCII (same length in bytes as in UTF-16 units, and short): no native call.
      let p = this.pos;
      for (let j = 0; j < n; j++) buf[p++] = s.charCodeAt(j);
      this.pos = p;
    } else this.pos += buf.write(s, this.pos, n, 'utf8');
  }

  private open(tag: number): void {
    this.buf[this.pos++] = tag;
    this.varint(this.sizes[this.i++] as number);
  }

  value(v: unknown): void {
    const buf = this.buf;
    if (v === null) {
      buf[this.pos++] = 0x08;
      buf[this.pos++] = 0;
    } else if (typeof v === 'boolean') {
      buf[this.pos++] = 0x20;
      buf[this.pos++] = v ? 1 : 0;
    } else if (typeof v === 'number') {
      buf[this.pos++] = 0x11;
      this.pos = buf.writeDoubleLE(v, this.pos);
    } else if (typeof v === 'string') {
      this.str(0x1a, v);
    } else if (Array.isArray(v)) {
      this.open(0x32);
      for (let i = 0; i < v.length; i++) {
        this.open(0x0a);
        this.value(v[i]);
      }
    } else if (typeof v === 'object') {
      this.open(0x2a);
      this.struct(v as JsonMap);
    }
  }

  struct(o: JsonMap): void {
    for (const k of structKeys(o)) {
      const v = o[k];
      if (v === undefined) continue;
      this.open(0x0a);
      if (k !== '') this.str(0x0a, k);
      this.open(0x12);
      this.value(v);
    }
  }

  mapEntry(tag: number, k: string, v: string): void {
    this.open(tag);
    if (k !== '') this.str(0x0a, k);
    if (v !== '') this.str(0x12, v);
  }

  field(tag: number, s: string): void {
    if (s !== '') this.str(tag, s);
  }

  patch(tag: number, p: JsonPatch): void {
    this.open(tag);
    this.field(0x0a, p.op);
    this.field(0x12, p.path);
    if (p.value !== undefined) {
      this.open(0x1a);
      this.value(p.value);
    }
    this.field(0x22, p.from);
  }

  phase(tag: number, structs: readonly (JsonMap | undefined)[]): void {
    this.open(tag);
    for (let i = 0; i < structs.length; i++) {
      const s = structs[i];
      if (s === undefined) continue;
      this.open(0x0a + 8 * i);
      this.struct(s);
    }
  }
}

/** The phase members present, in field order (6, 7, 8), each with its Struct fields. */
function phasesOf(ev: InterceptorEvaluation): [number, (JsonMap | undefined)[]][] {
  const out: [number, (JsonMap | undefined)[]][] = [];
  if (ev.modifyOperation !== undefined) out.push([0x32, [ev.modifyOperation.proposedOperation]]);
  if (ev.validate !== undefined) out.push([0x3a, [ev.validate.proposedOperation, ev.validate.currentState]]);
  if (ev.postCommit !== undefined) out.push([0x42, [ev.postCommit.committedResponse]]);
  return out;
}

/** `InterceptorEvaluation.encode(ev).finish()`, byte for byte, in one buffer. */
export function encodeEvaluation(ev: InterceptorEvaluation): Buffer {
  const m = new Measure();
  let total = m.field(ev.interceptorName) + m.field(ev.bindingId) + m.field(ev.service) + m.field(ev.method);
  const principal = Object.entries(ev.principal);
  for (const [k, v] of principal) total += m.mapEntry(k, v);
  const phases = phasesOf(ev);
  for (const [, structs] of phases) total += m.phase(structs);

  const w = new Write(Buffer.allocUnsafe(total), m.sizes);
  w.field(0x0a, ev.interceptorName);
  w.field(0x12, ev.bindingId);
  w.field(0x1a, ev.service);
  w.field(0x22, ev.method);
  for (const [k, v] of principal) w.mapEntry(0x2a, k, v);
  for (const [tag, structs] of phases) w.phase(tag, structs);
  if (w.pos !== total) throw new Error(`evaluation encoder wrote ${w.pos} of ${total} bytes`);
  return w.buf;
}

/** `InterceptorResult.encode(result).finish()`, byte for byte, in one buffer. */
export function encodeResult(result: InterceptorResult): Buffer {
  const m = new Measure();
  let total = result.allowed !== false ? 2 : 0;
  total += m.field(result.reason) + m.field(result.statusCode);
  for (const p of result.patches) total += m.patch(p);
  const annotations = Object.entries(result.logAnnotations);
  for (const [k, v] of annotations) total += m.mapEntry(k, v);

  // Small results come from Node's buffer pool: no allocation of their own.
  const w = new Write(Buffer.allocUnsafe(total), m.sizes);
  if (result.allowed !== false) {
    w.buf[w.pos++] = 0x08;
    w.buf[w.pos++] = result.allowed ? 1 : 0;
  }
  w.field(0x12, result.reason);
  w.field(0x1a, result.statusCode);
  for (const p of result.patches) w.patch(0x22, p);
  for (const [k, v] of annotations) w.mapEntry(0x2a, k, v);
  if (w.pos !== total) throw new Error(`result encoder wrote ${w.pos} of ${total} bytes`);
  return w.buf;
}

// ── decode ──────────────────────────────────────────────────────────────────────────────
//
// The generated decoders' rules, kept exactly: a wrong wire type for a known field, or an
// unknown field, is skipped, except that wire type 4 (end group) and tag 0 end the message
// early; a message nested 100 deep throws; a `Value` with no kind is `undefined` (dropped
// from a Struct, kept in a list); of several kinds the first of string, number, bool,
// struct, list, null wins; the last of repeated singular fields wins.

const DEPTH_LIMIT = 100;

function depthError(): Error {
  return new Error('protobuf decode recursion limit exceeded');
}

/**
 * A reader whose strings come from Node's UTF-8 decoder (no subarray, no TextDecoder call
 * per string). Node replaces invalid UTF-8 with U+FFFD by the same WHATWG rules as the
 * reader's TextDecoder; the tests compare the two on invalid sequences and arbitrary bytes.
 */
/** Buffer's own UTF-8 slice: what `toString('utf8', start, end)` calls, without its argument handling. */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

class Reader extends BinaryReader {
  private readonly text: Utf8Sliceable;

  constructor(bytes: Uint8Array) {
    super(bytes);
    const buf = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.text = buf as unknown as Utf8Sliceable;
  }

  override string(): string {
    const len = this.uint32();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.len) throw new RangeError('premature EOF');
    return this.text.utf8Slice(start, this.pos);
  }
}

/** `true` when the loop must stop (end group or tag 0); otherwise the field was skipped. */
function skipUnknown(r: Reader, tag: number): boolean {
  if ((tag & 7) === 4 || tag === 0) return true;
  r.skip(tag & 7);
  return false;
}

function readStruct(r: Reader, length: number, depth: number): JsonMap {
  if (depth >= DEPTH_LIMIT) throw depthError();
  const end = r.pos + length;
  const out: JsonMap = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      // One Struct.FieldsEntry.
      if (depth + 1 >= DEPTH_LIMIT) throw depthError();
      const entryLength = r.uint32(); // read before the position it ends at
      const entryEnd = r.pos + entryLength;
      let key = '';
      let value: unknown;
      while (r.pos < entryEnd) {
        const t = r.uint32();
        if (t === 10) key = r.string();
        else if (t === 18) value = readValue(r, r.uint32(), depth + 2);
        else if (skipUnknown(r, t)) break;
      }
      // The generated decoder assigns by key, so "__proto__" never becomes an own key.
      if (value !== undefined && key !== '__proto__') out[key] = value;
      continue;
    }
    if (skipUnknown(r, tag)) break;
  }
  return out;
}

function readList(r: Reader, length: number, depth: number): unknown[] {
  if (depth >= DEPTH_LIMIT) throw depthError();
  const end = r.pos + length;
  const out: unknown[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) out.push(readValue(r, r.uint32(), depth + 1));
    else if (skipUnknown(r, tag)) break;
  }
  return out;
}

function readValue(r: Reader, length: number, depth: number): unknown {
  if (depth >= DEPTH_LIMIT) throw depthError();
  const end = r.pos + length;
  let isNull = false;
  let num: number | undefined;
  let str: string | undefined;
  let bool: boolean | undefined;
  let struct: JsonMap | undefined;
  let list: unknown[] | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 8:
        r.int32();
        isNull = true;
        continue;
      case 17:
        num = r.double();
        continue;
      case 26:
        str = r.string();
        continue;
      case 32:
        bool = r.bool();
        continue;
      case 42:
        struct = readStruct(r, r.uint32(), depth + 1);
        continue;
      case 50:
        list = readList(r, r.uint32(), depth + 1);
        continue;
    }
    if (skipUnknown(r, tag)) break;
  }
  if (str !== undefined) return str;
  if (num !== undefined) return num;
  if (bool !== undefined) return bool;
  if (struct !== undefined) return struct;
  if (list !== undefined) return list;
  return isNull ? null : undefined;
}

/** A phase message whose fields 1 (and 2) are Structs. */
function readPhase(
  r: Reader,
  length: number,
  depth: number,
  fields: number,
): [JsonMap | undefined, JsonMap | undefined] {
  if (depth >= DEPTH_LIMIT) throw depthError();
  const end = r.pos + length;
  const out: [JsonMap | undefined, JsonMap | undefined] = [undefined, undefined];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) out[0] = readStruct(r, r.uint32(), depth + 1);
    else if (tag === 18 && fields === 2) out[1] = readStruct(r, r.uint32(), depth + 1);
    else if (skipUnknown(r, tag)) break;
  }
  return out;
}

/** What `InterceptorEvaluation.decode(bytes)` returns, built without wrapper objects. */
export function decodeEvaluation(bytes: Uint8Array): InterceptorEvaluation {
  const r = new Reader(bytes);
  const ev: InterceptorEvaluation = {
    interceptorName: '',
    bindingId: '',
    service: '',
    method: '',
    principal: {},
    modifyOperation: undefined,
    validate: undefined,
    postCommit: undefined,
  };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        ev.interceptorName = r.string();
        continue;
      case 18:
        ev.bindingId = r.string();
        continue;
      case 26:
        ev.service = r.string();
        continue;
      case 34:
        ev.method = r.string();
        continue;
      case 42: {
        // One principal map entry.
        const entryLength = r.uint32(); // read before the position it ends at
        const entryEnd = r.pos + entryLength;
        let key = '';
        let value = '';
        while (r.pos < entryEnd) {
          const t = r.uint32();
          if (t === 10) key = r.string();
          else if (t === 18) value = r.string();
          else if (skipUnknown(r, t)) break;
        }
        if (key !== '__proto__') ev.principal[key] = value;
        continue;
      }
      case 50: {
        const [proposedOperation] = readPhase(r, r.uint32(), 1, 1);
        ev.modifyOperation = { proposedOperation };
        continue;
      }
      case 58: {
        const [proposedOperation, currentState] = readPhase(r, r.uint32(), 1, 2);
        ev.validate = { proposedOperation, currentState };
        continue;
      }
      case 66: {
        const [committedResponse] = readPhase(r, r.uint32(), 1, 1);
        ev.postCommit = { committedResponse };
        continue;
      }
    }
    if (skipUnknown(r, tag)) break;
  }
  return ev;
}
