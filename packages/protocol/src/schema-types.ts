import type { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';

/** Scalar type names as protobuf spells them. */
export type ScalarType =
  | 'double'
  | 'float'
  | 'int64'
  | 'uint64'
  | 'int32'
  | 'fixed64'
  | 'fixed32'
  | 'bool'
  | 'string'
  | 'bytes'
  | 'uint32'
  | 'sfixed32'
  | 'sfixed64'
  | 'sint32'
  | 'sint64';

/** One field of a message, as the generated schema table records it. */
export interface FieldSchema {
  readonly name: string;
  readonly number: number;
  readonly jsonName: string;
  /** scalar / enum / message; `map` for map fields, whose value kind is `valueKind`. */
  readonly kind: 'scalar' | 'enum' | 'message' | 'map';
  /** Scalar name, or the full name of the enum or message (for maps: of the value). */
  readonly type: string;
  readonly mapKey?: string;
  readonly valueKind?: 'scalar' | 'enum' | 'message';
  readonly repeated?: boolean;
  /** The real oneof this field belongs to (proto3 `optional` fields have none). */
  readonly oneof?: string;
  /** proto3 `optional`: presence is tracked. */
  readonly optional?: boolean;
  /** Carries `(openshell.options.v1.secret) = true`. */
  readonly secret?: boolean;
}

export interface MessageSchema {
  readonly fields: readonly FieldSchema[];
}

export interface MethodSchema {
  readonly name: string;
  readonly request: string;
  readonly response: string;
}

export interface SchemaTable {
  readonly messages: Readonly<Record<string, MessageSchema>>;
  readonly enums: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly services: Readonly<Record<string, readonly MethodSchema[]>>;
}

/** The part of a ts-proto message codec that the schema-driven code uses. */
export interface MessageCodec<T = unknown> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
  fromJSON(object: unknown): T;
  toJSON(message: T): unknown;
  create(base?: never): T;
  fromPartial(object: never): T;
}
