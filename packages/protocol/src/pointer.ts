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

const BAD_TILDE = /~(?![01])/;

function badTilde(pointer: string): JsonPointerError {
  const at = BAD_TILDE.exec(pointer)?.index ?? pointer.indexOf('~');
  return new JsonPointerError(pointer, `"~" at offset ${at} must be followed by 0 or 1`);
}

/** `~1` → `/`, `~0` → `~`, left to right (so `~01` is `~1`). */
function unescapeToken(token: string, pointer: string): string {
  let out = '';
  let from = 0;
  for (let i = token.indexOf('~'); i !== -1; i = token.indexOf('~', from)) {
    const next = token.charCodeAt(i + 1);
    if (next !== 0x30 && next !== 0x31) throw badTilde(pointer);
    out += token.slice(from, i) + (next === 0x30 ? '~' : '/');
    from = i + 2;
  }
  return out + token.slice(from);
}

/**
 * Split a JSON Pointer into unescaped reference tokens. `""` is the whole document. Runs on
 * every patch path several times per evaluation, hence a loop rather than regular expressions.
 */
export function parseJsonPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (pointer.charCodeAt(0) !== 0x2f) throw new JsonPointerError(pointer, 'must be empty or start with "/"');
  const tokens = pointer.slice(1).split('/');
  if (pointer.indexOf('~') === -1) return tokens;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (t.indexOf('~') !== -1) tokens[i] = unescapeToken(t, pointer);
  }
  return tokens;
}

/** Escape one reference token (`~` → `~0`, `/` → `~1`). */
export function escapePointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Build a JSON Pointer from raw tokens, escaping each. */
export function formatJsonPointer(tokens: readonly (string | number)[]): string {
  return tokens.map((t) => `/${escapePointerToken(t)}`).join('');
}

const isArrayIndex = (k: string) => /^(0|[1-9][0-9]*)$/.test(k) && Number(k) < 2 ** 32 - 1;

export interface CopyAlongOptions {
  /**
   * Replace objects by copy-on-write overlays instead of copies: O(1) whatever their size,
   * but Proxies (they cannot be structured-cloned). For a candidate that is only checked and
   * then dropped; a document that outlives the check wants real copies.
   */
  readonly overlay?: boolean;
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
  options: CopyAlongOptions = {},
): unknown {
  if (typeof doc !== 'object' || doc === null) return doc;
  const tokens = typeof pointer === 'string' ? parseJsonPointer(pointer) : pointer;
  const own = (v: object): object => {
    if (copies.has(v)) return v;
    const c = Array.isArray(v)
      ? v.slice()
      : options.overlay
        ? overlay(v as Record<string, unknown>)
        : { ...v };
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

/**
 * `copyAlongPointer` for everything one RFC 6902 operation can change: its `path`, the
 * `from` of a move or copy, and for a move out of an array, `path` as the removal shifts
 * it (a move is a remove, then an add into the changed document).
 */
export function copyForPatchOperation(
  doc: unknown,
  operation: { readonly op: string; readonly path: string; readonly from?: string },
  copies: WeakSet<object>,
  options: CopyAlongOptions = {},
): unknown {
  let out = copyAlongPointer(doc, operation.path, copies, options);
  if ((operation.op === 'move' || operation.op === 'copy') && typeof operation.from === 'string') {
    out = copyAlongPointer(out, operation.from, copies, options);
    if (operation.op === 'move') {
      const shifted = shiftedByRemoval(parseJsonPointer(operation.from), parseJsonPointer(operation.path));
      if (shifted) out = copyAlongPointer(out, shifted, copies, options);
    }
  }
  return out;
}

/** Where `path` points before removing `from`, when removing an array item at `from` shifts it. */
function shiftedByRemoval(from: readonly string[], path: readonly string[]): string[] | undefined {
  const n = from.length;
  if (n === 0 || path.length <= n) return undefined;
  for (let i = 0; i < n - 1; i++) if (from[i] !== path[i]) return undefined;
  const k = from[n - 1] as string;
  const j = path[n - 1] as string;
  if (!isArrayIndex(k) || !isArrayIndex(j) || Number(j) < Number(k)) return undefined;
  return [...path.slice(0, n - 1), String(Number(j) + 1), ...path.slice(n)];
}

/**
 * A plain object that reads through to `base` and keeps its own writes and deletions, with
 * the key order a copy would have (kept keys in place, new ones appended). `base` is never
 * touched.
 */
function overlay(base: Record<string, unknown>): Record<string, unknown> {
  const written = new Map<string, unknown>();
  const deleted = new Set<string>();
  const appended: string[] = [];
  const inBase = (k: string) => Object.hasOwn(base, k) && !deleted.has(k);
  const visible = (k: string) => written.has(k) || inBase(k);
  // The target stays an empty extensible object, so no Proxy invariant constrains the traps.
  return new Proxy({} as Record<string, unknown>, {
    get(target, k, receiver) {
      if (typeof k === 'string') {
        if (written.has(k)) return written.get(k);
        if (inBase(k)) return base[k];
      }
      return Reflect.get(target, k, receiver);
    },
    set(_t, k, v) {
      if (typeof k !== 'string') return false;
      if (!visible(k)) appended.push(k);
      written.set(k, v);
      return true;
    },
    deleteProperty(_t, k) {
      if (typeof k !== 'string') return true;
      written.delete(k);
      if (Object.hasOwn(base, k)) deleted.add(k);
      const i = appended.indexOf(k);
      if (i >= 0) appended.splice(i, 1);
      return true;
    },
    has(target, k) {
      return (typeof k === 'string' && visible(k)) || Reflect.has(target, k);
    },
    ownKeys() {
      const keys = [...Object.keys(base).filter((k) => !deleted.has(k)), ...appended];
      // Like any object: integer-like keys first, ascending, then the others in insertion order.
      const indices = keys.filter(isArrayIndex);
      if (indices.length === 0) return keys;
      indices.sort((a, b) => Number(a) - Number(b));
      return [...indices, ...keys.filter((k) => !isArrayIndex(k))];
    },
    getOwnPropertyDescriptor(_t, k) {
      if (typeof k !== 'string' || !visible(k)) return undefined;
      const value = written.has(k) ? written.get(k) : base[k];
      return { value, writable: true, enumerable: true, configurable: true };
    },
    defineProperty() {
      return false;
    },
  });
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
