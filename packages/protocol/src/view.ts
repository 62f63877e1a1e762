import type { JsonObject } from './gen/json.js';
import { CODECS } from './gen/registry.js';
import { parseJsonPointer } from './pointer.js';
import { ProtoJson, type ToJsonOptions } from './protojson.js';
import { schema } from './schema.js';
import type { MessageCodec } from './schema-types.js';

const protoJson = new ProtoJson(schema);

export function codecFor(typeName: string): MessageCodec {
  const c = CODECS[typeName];
  if (!c) throw new Error(`unknown message type ${typeName}`);
  return c;
}

/** ts-proto message → canonical ProtoJSON. Secrets are kept unless `removeSecrets`. */
export function toProtoJson(typeName: string, message: unknown, options?: ToJsonOptions): JsonObject {
  return protoJson.toJson(typeName, message, options);
}

/**
 * The operation view of CONTRACT section 2: canonical ProtoJSON of a request or
 * response with every secret field removed, at any depth.
 */
export function operationView(typeName: string, message: unknown): JsonObject {
  return protoJson.toJson(typeName, message, { removeSecrets: true });
}

/** Strict ProtoJSON → ts-proto message. Throws `ProtoJsonError` naming the JSON Pointer of the problem. */
export function parseProtoJson<T = unknown>(typeName: string, json: unknown): T {
  return protoJson.parse(typeName, json) as T;
}

/**
 * Strictly re-check `doc`, a `typeName` document that parsed before RFC 6902 operations
 * changed it at `pointers`, looking only at what those changes can have touched (cost of
 * the patch, not of the document). Throws `ProtoJsonError` exactly when `parseProtoJson`
 * would (the problem named may differ when there are several). Only valid when `doc`
 * parsed before the changes.
 */
export function checkChangedProtoJson(
  typeName: string,
  doc: unknown,
  pointers: readonly (string | readonly string[])[],
): void {
  protoJson.checkChanged(
    typeName,
    doc,
    pointers.map((p) => (typeof p === 'string' ? parseJsonPointer(p) : p)),
  );
}

export function encodeMessage(typeName: string, message: unknown): Uint8Array {
  return codecFor(typeName).encode(message).finish();
}

export function decodeMessage<T = unknown>(typeName: string, bytes: Uint8Array): T {
  return codecFor(typeName).decode(bytes) as T;
}

export interface Canonical<T = unknown> {
  /** The message, as decoded from `bytes`. */
  readonly message: T;
  /** Its protobuf encoding. */
  readonly bytes: Uint8Array;
  /** Its canonical ProtoJSON (secrets kept). */
  readonly json: JsonObject;
}

/**
 * What the gateway does to a patched operation (CONTRACT 4.3): parse strictly as
 * `typeName`, re-encode, decode back and render canonical JSON. Throws
 * `ProtoJsonError` when the JSON is not a valid `typeName`.
 */
export function canonicalize<T = unknown>(typeName: string, json: unknown): Canonical<T> {
  const codec = codecFor(typeName);
  const bytes = codec.encode(protoJson.parse(typeName, json)).finish();
  const message = codec.decode(bytes) as T;
  return { message, bytes, json: protoJson.toJson(typeName, message) };
}

/**
 * `canonicalize` without the protobuf round trip: strict parse, then render. The parse
 * already does what encode → decode would change (UTF-16 made well-formed, float32
 * precision, -0 integers, int64 spelled as decimal strings), so `json` is exactly
 * `canonicalize(typeName, json).json` and `message` renders to it (a property test holds
 * both over arbitrary input). For the gateway's hot path, where the bytes are not needed.
 */
export function canonicalJson<T = unknown>(
  typeName: string,
  json: unknown,
): { message: T; json: JsonObject } {
  const message = protoJson.parse(typeName, json) as T;
  return { message, json: protoJson.toJson(typeName, message) };
}

/** A ts-proto message with every field at its default, built from the schema. */
export function emptyMessage<T = unknown>(typeName: string): T {
  return protoJson.defaults(schema.message(typeName)) as T;
}
