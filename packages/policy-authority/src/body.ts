import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { type CompiledField, schema } from '@openshell-interceptors/protocol';
import { MalformedBodyError } from './errors.js';

// The generated decoders are lenient: they skip unknown fields, fields sent with the
// wrong wire type, and replace invalid UTF-8. A policy body decoded that way could
// be weaker than the one the authority signed (a field we do not know silently
// dropped), which breaks "complete". So before a body is decoded it is walked
// against the schema and refused unless every byte is understood.

const MAX_DEPTH = 64;

const VARINT_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'bool']);
const FIXED64_TYPES = new Set(['double', 'fixed64', 'sfixed64']);
const FIXED32_TYPES = new Set(['float', 'fixed32', 'sfixed32']);

type Kind = 'scalar' | 'enum' | 'message';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function scalarWireType(kind: Kind, type: string): WireType {
  if (kind === 'message') return WireType.LengthDelimited;
  if (kind === 'enum' || VARINT_TYPES.has(type)) return WireType.Varint;
  if (FIXED64_TYPES.has(type)) return WireType.Bit64;
  if (FIXED32_TYPES.has(type)) return WireType.Bit32;
  return WireType.LengthDelimited; // string, bytes
}

const WIRE_NAMES: Record<number, string> = {
  0: 'varint',
  1: 'fixed64',
  2: 'length-delimited',
  3: 'group start',
  4: 'group end',
  5: 'fixed32',
};
const wireName = (w: number): string => WIRE_NAMES[w] ?? `wire type ${w}`;

function join(at: string, name: string): string {
  return at ? `${at}.${name}` : name;
}

/** One value of `kind`/`type` at the reader's position, already past its tag. */
function checkValue(
  reader: BinaryReader,
  wire: WireType,
  kind: Kind,
  type: string,
  at: string,
  depth: number,
): void {
  const expected = scalarWireType(kind, type);
  if (wire !== expected) {
    throw new MalformedBodyError(at, `expected ${wireName(expected)} encoding, found ${wireName(wire)}`);
  }
  if (kind === 'message') {
    checkMessage(reader.bytes(), type, at, depth + 1);
  } else if (type === 'string') {
    try {
      utf8.decode(reader.bytes());
    } catch {
      throw new MalformedBodyError(at, 'string is not valid UTF-8');
    }
  } else {
    reader.skip(wire);
  }
}

function checkMapEntry(bytes: Uint8Array, field: CompiledField, at: string, depth: number): void {
  const reader = new BinaryReader(bytes);
  const keyType = field.mapKey ?? 'string';
  while (reader.pos < reader.len) {
    const [no, wire] = reader.tag();
    if (no === 1) checkValue(reader, wire, 'scalar', keyType, `${at}{key}`, depth);
    else if (no === 2)
      checkValue(reader, wire, field.valueKind ?? 'scalar', field.type, `${at}{value}`, depth);
    else throw new MalformedBodyError(at, `map entry has unknown field number ${no}`);
  }
}

function checkMessage(bytes: Uint8Array, typeName: string, at: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new MalformedBodyError(at, `nesting deeper than ${MAX_DEPTH}`);
  const message = schema.message(typeName);
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wire] = reader.tag();
    const field = message.fields.find((f) => f.number === no);
    if (!field) {
      throw new MalformedBodyError(at, `unknown field number ${no} in ${typeName} (${wireName(wire)})`);
    }
    const path = join(at, field.name);
    if (field.kind === 'map') {
      if (wire !== WireType.LengthDelimited) {
        throw new MalformedBodyError(path, `expected length-delimited map entry, found ${wireName(wire)}`);
      }
      checkMapEntry(reader.bytes(), field, path, depth + 1);
      continue;
    }
    const kind: Kind = field.kind;
    const expected = scalarWireType(kind, field.type);
    // Repeated numeric fields may come packed (one length-delimited run) or not.
    if (field.repeated && expected !== WireType.LengthDelimited && wire === WireType.LengthDelimited) {
      const packed = new BinaryReader(reader.bytes());
      while (packed.pos < packed.len) packed.skip(expected);
      continue;
    }
    checkValue(reader, wire, kind, field.type, path, depth);
  }
}

/**
 * Refuse a body that is not a fully understood encoding of `typeName`: truncated
 * data, unknown field numbers, wrong wire types and invalid UTF-8 all throw
 * `MalformedBodyError` naming the field path.
 */
export function assertStrictEncoding(bytes: Uint8Array, typeName: string): void {
  try {
    checkMessage(bytes, typeName, '', 0);
  } catch (err) {
    if (err instanceof MalformedBodyError) throw err;
    // BinaryReader throws plain errors on truncation and bad varints.
    throw new MalformedBodyError('', err instanceof Error ? err.message : String(err));
  }
}
