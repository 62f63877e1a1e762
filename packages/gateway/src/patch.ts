import {
  canonicalJson,
  copyForPatchOperation,
  type JsonObject,
  type JsonPatch,
  JsonPointerError,
  operationView,
  ProtoJsonError,
  parseJsonPointer,
  pointerTouchesSecret,
  schema,
} from '@openshell-interceptors/protocol';
import fjp, { type Operation } from 'fast-json-patch';
import type { FailureLayer } from './errors.js';

/** An RFC 6902 operation as recorded (the wire `JsonPatch` without its empty fields). */
export interface PatchOp {
  readonly op: string;
  readonly path: string;
  readonly value?: unknown;
  readonly from?: string;
}

export function recordPatch(p: JsonPatch): PatchOp {
  return {
    op: p.op,
    path: p.path,
    ...(p.value !== undefined ? { value: p.value as unknown } : {}),
    ...(p.from !== '' ? { from: p.from } : {}),
  };
}

/** A patch the gateway refuses; the message never carries the document (it holds secrets). */
export class PatchFailure extends Error {
  constructor(
    readonly layer: FailureLayer,
    message: string,
  ) {
    super(message);
    this.name = 'PatchFailure';
  }
}

const usesFrom = (op: string) => op === 'move' || op === 'copy';

/**
 * CONTRACT 4.3: every `path` (and `from` of move/copy) must be a valid JSON Pointer that
 * does not touch a secret field, nor end at a value holding one (the root included).
 */
export function checkPatchPointers(typeName: string, patches: readonly PatchOp[]): void {
  patches.forEach((p, i) => {
    const pointers: [string, string][] = [['path', p.path]];
    if (usesFrom(p.op) || (p.from !== undefined && p.from !== '')) pointers.push(['from', p.from ?? '']);
    for (const [field, ptr] of pointers) {
      try {
        parseJsonPointer(ptr);
      } catch (e) {
        if (e instanceof JsonPointerError)
          throw new PatchFailure('patch', `patch #${i} (${p.op}): ${field} ${e.message}`);
        throw e;
      }
      if (pointerTouchesSecret(schema, typeName, ptr)) {
        throw new PatchFailure(
          'patch',
          `patch #${i} (${p.op}): ${field} ${JSON.stringify(ptr)} touches a secret field; interceptors may not read or write secrets`,
        );
      }
    }
  });
}

/**
 * Apply the patches in order to a copy of the FULL request (secrets in it; copied along the
 * patch paths), then re-validate strictly as `typeName`: parse and render, which gives what
 * parse, encode, decode, render would (protocol's `canonicalJson`). All or nothing: the
 * input is never modified; any error throws PatchFailure.
 */
export function applyPatches(
  typeName: string,
  request: JsonObject,
  patches: readonly PatchOp[],
): { json: JsonObject; message: unknown } {
  checkPatchPointers(typeName, patches);
  const ops = patches.map((p) => ({ ...p })) as unknown as Operation[];
  let candidate: unknown = request;
  try {
    // One operation at a time, each on containers copied along its path(s) just before it
    // runs: the request is never modified, and a large request is not deep-copied for a
    // small patch (the strict parse below builds a fresh message anyway).
    // validateOperation: op names, required value/from, parents that exist.
    const owned = new WeakSet<object>();
    ops.forEach((op, i) => {
      candidate = copyForPatchOperation(candidate, op, owned);
      candidate = fjp.applyOperation(candidate, op, true, true, true, i).newDocument;
    });
  } catch (e) {
    if (e instanceof fjp.JsonPatchError) {
      const i = e.index ?? 0;
      const p = patches[i];
      const first = e.message.split('\n')[0];
      throw new PatchFailure('patch', `patch #${i} (${p?.op} ${p?.path}) failed: ${first} (${e.name})`);
    }
    throw new PatchFailure('patch', `patch could not be applied: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate))
    throw new PatchFailure('revalidate', `patched operation is not a JSON object, so not a ${typeName}`);
  try {
    return canonicalJson(typeName, candidate);
  } catch (e) {
    if (e instanceof ProtoJsonError)
      throw new PatchFailure('revalidate', `patched operation is not a valid ${typeName}: ${e.message}`);
    throw new PatchFailure(
      'revalidate',
      `patched operation could not be re-validated: ${(e as Error).message}`,
    );
  }
}

/**
 * The operation view of a canonical request (CONTRACT section 2). For a type with no secret
 * field anywhere the view is the canonical JSON itself, so it is not rendered a second time;
 * the two are then the same object and both must be treated as read-only.
 */
export function viewOf(typeName: string, state: { json: JsonObject; message: unknown }): JsonObject {
  return schema.message(typeName).hasSecret ? operationView(typeName, state.message) : state.json;
}
