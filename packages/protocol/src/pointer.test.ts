import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  escapePointerToken,
  formatJsonPointer,
  JsonPointerError,
  parseJsonPointer,
  pointerTouchesSecret,
} from './pointer.js';
import { schema } from './schema.js';

describe('JSON Pointer syntax', () => {
  it('parses the root, plain tokens and the two escapes', () => {
    expect(parseJsonPointer('')).toEqual([]);
    expect(parseJsonPointer('/a/b')).toEqual(['a', 'b']);
    expect(parseJsonPointer('/a~1b/c~0d/')).toEqual(['a/b', 'c~d', '']);
    expect(parseJsonPointer('/~01')).toEqual(['~1']);
  });

  it('rejects pointers that do not start with "/" and stray "~"', () => {
    expect(() => parseJsonPointer('a/b')).toThrow(JsonPointerError);
    expect(() => parseJsonPointer('/a~2')).toThrow(/"~" at offset 2/);
    expect(() => parseJsonPointer('/a~')).toThrow(JsonPointerError);
  });

  it('parses any string as RFC 6901 says: the same tokens, or the same error', () => {
    // The RFC's own recipe, written plainly: split, then ~1 → / and then ~0 → ~ per token.
    const reference = (p: string): string[] => {
      if (p === '') return [];
      if (!p.startsWith('/')) throw new JsonPointerError(p, 'must be empty or start with "/"');
      const bad = /~(?![01])/.exec(p);
      if (bad) throw new JsonPointerError(p, `"~" at offset ${bad.index} must be followed by 0 or 1`);
      return p
        .slice(1)
        .split('/')
        .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    };
    const outcome = (f: (p: string) => string[], p: string) => {
      try {
        return { tokens: f(p) };
      } catch (e) {
        return { error: (e as Error).message };
      }
    };
    const pointer = fc.oneof(
      fc.string({ unit: fc.constantFrom('a', '/', '~', '0', '1', '2', 'é'), maxLength: 12 }),
      fc.string().map((t) => `/${t}`),
    );
    fc.assert(
      fc.property(pointer, (p) => {
        expect(outcome(parseJsonPointer, p)).toEqual(outcome(reference, p));
      }),
      { numRuns: 2000 },
    );
  });

  it('escapes tokens so that they parse back', () => {
    expect(escapePointerToken('a/b~c')).toBe('a~1b~0c');
    const tokens = ['metadata', 'labels', 'example.com/team~x', '0'];
    expect(parseJsonPointer(formatJsonPointer(tokens))).toEqual(tokens);
  });
});

describe('pointerTouchesSecret', () => {
  const touches = (type: string, p: string) => pointerTouchesSecret(schema, type, p);

  it('is true for a secret field and anything below it', () => {
    expect(touches('openshell.v1.RevokeSshSessionRequest', '/token')).toBe(true);
    expect(touches('openshell.v1.CreateProviderRequest', '/provider/credentials')).toBe(true);
    expect(touches('openshell.v1.CreateProviderRequest', '/provider/credentials/GITHUB_TOKEN')).toBe(true);
    expect(touches('openshell.v1.ConfigureProviderRefreshRequest', '/material/x')).toBe(true);
  });

  it('accepts the proto name of a secret field too', () => {
    expect(touches('openshell.v1.CreateProviderRequest', '/provider/credentials')).toBe(true);
    expect(touches('openshell.v1.ConfigureProviderRefreshRequest', '/material')).toBe(true);
  });

  it('is true for a value that contains a secret below it, the root included', () => {
    expect(touches('openshell.v1.CreateProviderRequest', '/provider')).toBe(true);
    expect(touches('openshell.v1.CreateProviderRequest', '')).toBe(true);
    expect(touches('openshell.v1.RevokeSshSessionRequest', '')).toBe(true);
  });

  it('is false for siblings of secrets and for types without secrets', () => {
    expect(touches('openshell.v1.CreateProviderRequest', '/provider/type')).toBe(false);
    expect(touches('openshell.v1.CreateSandboxRequest', '')).toBe(false);
    expect(touches('openshell.v1.CreateSandboxRequest', '/labels/token')).toBe(false);
    expect(touches('openshell.v1.SandboxTemplate', '/resources/credentials')).toBe(false);
  });

  it('is false for names the schema does not know', () => {
    expect(touches('openshell.v1.CreateProviderRequest', '/provider/nope/credentials')).toBe(false);
  });
});
