import { type CompiledField, isFreeJsonType, type Schema } from './schema.js';

/** A string that is not a valid RFC 6901 JSON Pointer. */
export class JsonPointerError extends Error {
  constructor(
    readonly pointer: string,
    problem: string,
  ) {
    super(`invalid JSON Pointer ${JSON.stringify(pointer)}: ${problem}`);
    this.name = 'JsonPointerError';
  }
}

/** Split a JSON Pointer into unescaped reference tokens. `""` is the whole document. */
export function parseJsonPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new JsonPointerError(pointer, 'must be empty or start with "/"');
  const bad = /~(?![01])/.exec(pointer);
  if (bad) throw new JsonPointerError(pointer, `"~" at offset ${bad.index} must be followed by 0 or 1`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Escape one reference token (`~` → `~0`, `/` → `~1`). */
export function escapePointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Build a JSON Pointer from raw tokens, escaping each. */
export function formatJsonPointer(tokens: readonly (string | number)[]): string {
  return tokens.map((t) => `/${escapePointerToken(t)}`).join('');
}

/**
 * `doc` with every object and array from the root down to the parent of `pointer` replaced
 * by a shallow copy, so that an RFC 6902 operation at `pointer` changes copies only and a
 * large document is not deep-copied for a small patch. `copies` remembers what was copied
 * (pass the same set for every operation of one patch list). Stops where the path leaves
 * the document; own properties only.
 */
export function copyAlongPointer(
  doc: unknown,
  pointer: string | readonly string[],
  copies: WeakSet<object>,
): unknown {
  if (typeof doc !== 'object' || doc === null) return doc;
  const tokens = typeof pointer === 'string' ? parseJsonPointer(pointer) : pointer;
  const own = (v: object): object => {
    if (copies.has(v)) return v;
    const c = Array.isArray(v) ? v.slice() : { ...v };
    copies.add(c);
    return c;
  };
  const root = own(doc);
  let cur = root as Record<string, unknown>;
  for (let i = 0; i < tokens.length - 1; i++) {
    const key = tokens[i] as string;
    if (!Object.hasOwn(cur, key)) break;
    const child = cur[key];
    if (typeof child !== 'object' || child === null) break;
    const c = own(child);
    cur[key] = c;
    cur = c as Record<string, unknown>;
  }
  return root;
}

type Node =
  | { readonly kind: 'message'; readonly type: string }
  | { readonly kind: 'map' | 'list'; readonly field: CompiledField }
  | { readonly kind: 'leaf' };

/**
 * Whether a JSON Pointer into a ProtoJSON document of `typeName` touches a secret:
 * it names a secret field or goes through one, or it ends at a message, list or
 * map value that holds a secret somewhere below (the root included). Names the
 * schema does not know are not secrets (the strict parse rejects them anyway).
 */
export function pointerTouchesSecret(
  schema: Schema,
  typeName: string,
  pointer: string | readonly string[],
): boolean {
  const tokens = typeof pointer === 'string' ? parseJsonPointer(pointer) : pointer;
  let node: Node = { kind: 'message', type: typeName };
  for (const token of tokens) {
    if (node.kind === 'leaf') return false;
    if (node.kind === 'message') {
      if (isFreeJsonType(node.type)) return false;
      const f = schema.message(node.type).byName.get(token);
      if (!f) return false;
      if (f.secret) return true;
      if (f.kind === 'map') node = { kind: 'map', field: f };
      else if (f.repeated) node = { kind: 'list', field: f };
      else node = f.kind === 'message' ? { kind: 'message', type: f.type } : { kind: 'leaf' };
      continue;
    }
    const f: CompiledField = node.field;
    const elementKind = f.kind === 'map' ? f.valueKind : f.kind;
    node = elementKind === 'message' ? { kind: 'message', type: f.type } : { kind: 'leaf' };
  }
  if (node.kind === 'leaf') return false;
  if (node.kind === 'message') return !isFreeJsonType(node.type) && schema.message(node.type).hasSecret;
  return schema.fieldHoldsSecret(node.field);
}
