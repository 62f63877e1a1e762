import {
  canonicalize,
  type JsonObject,
  operationView,
  route,
  schema,
} from '@openshell-interceptors/protocol';
import { describe, expect, it } from 'vitest';
import { applyPatches, PatchFailure, type PatchOp, viewOf } from './patch.js';

const CS = route('CreateSandbox').requestType;
const CP = route('CreateProvider').requestType;

const request = (): JsonObject => ({
  name: 'box',
  labels: { team: 'ml', tier: 'gold' },
  spec: {
    template: {
      image: 'ubuntu:24.04',
      labels: { a: '1' },
      resources: { items: [{ a: 1 }, { b: 2 }, { c: 3 }] },
    },
    environment: { A: '1' },
    command: ['bash', '-lc', 'true'],
  },
});

/** Every object and array of a JSON value, for identity checks. */
function containers(v: unknown, out: unknown[] = []): unknown[] {
  if (typeof v === 'object' && v !== null) {
    out.push(v);
    for (const x of Object.values(v)) containers(x, out);
  }
  return out;
}

describe('applyPatches: copies only along the patch paths, never modifies the request', () => {
  const cases: [string, PatchOp[], (r: JsonObject) => void][] = [
    [
      'add into a map',
      [{ op: 'add', path: '/labels/new', value: 'x' }],
      (r) => {
        (r.labels as JsonObject).new = 'x';
      },
    ],
    [
      'remove from a nested map',
      [{ op: 'remove', path: '/spec/environment/A' }],
      (r) => void delete ((r.spec as JsonObject).environment as JsonObject).A,
    ],
    [
      'replace a list item',
      [{ op: 'replace', path: '/spec/command/0', value: 'sh' }],
      (r) => {
        ((r.spec as JsonObject).command as string[])[0] = 'sh';
      },
    ],
    [
      'insert into a list',
      [{ op: 'add', path: '/spec/command/1', value: '-x' }],
      (r) => void ((r.spec as JsonObject).command as string[]).splice(1, 0, '-x'),
    ],
    [
      'move a subtree, then edit inside its new place',
      [
        { op: 'move', from: '/spec/template/labels', path: '/labels' },
        { op: 'add', path: '/labels/b', value: '2' },
      ],
      (r) => {
        const t = (r.spec as JsonObject).template as JsonObject;
        r.labels = { ...(t.labels as JsonObject), b: '2' };
        delete t.labels;
      },
    ],
    [
      'move a list item into a later sibling (the removal shifts the path)',
      [{ op: 'move', from: '/spec/command/0', path: '/spec/command/1' }],
      (r) => {
        (r.spec as JsonObject).command = ['-lc', 'bash', 'true'];
      },
    ],
    [
      'move a list item into a later item (the removal shifts the target)',
      [{ op: 'move', from: '/spec/template/resources/items/0', path: '/spec/template/resources/items/1/x' }],
      (r) => {
        const t = (r.spec as JsonObject).template as JsonObject;
        t.resources = { items: [{ b: 2 }, { c: 3, x: { a: 1 } }] };
      },
    ],
    [
      'copy a subtree, then edit the copy',
      [
        { op: 'copy', from: '/spec/template/labels', path: '/annotations' },
        { op: 'replace', path: '/annotations/a', value: 'changed' },
      ],
      (r) => {
        r.annotations = { a: 'changed' };
      },
    ],
    [
      'replace the root',
      [{ op: 'replace', path: '', value: { name: 'other' } }],
      (r) => {
        for (const k of Object.keys(r)) delete r[k];
        r.name = 'other';
      },
    ],
  ];
  for (const [name, patches, expected] of cases) {
    it(name, () => {
      const input = request();
      const before = structuredClone(input);
      const identities = containers(input);
      const out = applyPatches(CS, input, patches);
      const want = request();
      expected(want);
      expect(out.json).toEqual(canonicalize(CS, want).json);
      expect(input).toEqual(before);
      // The same objects, unchanged: nothing of the request was swapped or mutated in place.
      expect(containers(input)).toEqual(identities);
      for (const [i, c] of containers(input).entries()) expect(c).toBe(identities[i]);
    });
  }

  it('leaves the request untouched when a later patch fails (all or nothing)', () => {
    const input = request();
    const before = structuredClone(input);
    expect(() =>
      applyPatches(CS, input, [
        { op: 'add', path: '/labels/new', value: 'x' },
        { op: 'remove', path: '/spec/missing/field' },
      ]),
    ).toThrow(PatchFailure);
    expect(input).toEqual(before);
  });

  it('refuses a __proto__ path without touching the request', () => {
    const input = request();
    const before = structuredClone(input);
    expect(() => applyPatches(CS, input, [{ op: 'add', path: '/labels/__proto__/x', value: 'y' }])).toThrow(
      PatchFailure,
    );
    expect(input).toEqual(before);
    expect(Object.getPrototypeOf(input.labels)).toBe(Object.prototype);
  });

  it('returns JSON that shares no object with the request', () => {
    const input = request();
    const out = applyPatches(CS, input, [{ op: 'add', path: '/labels/new', value: 'x' }]);
    const mine = new Set(containers(input));
    expect(containers(out.json).filter((c) => mine.has(c))).toEqual([]);
  });
});

describe('viewOf', () => {
  it('is the canonical JSON itself for a type without secrets (no second render)', () => {
    expect(schema.message(CS).hasSecret).toBe(false);
    const state = canonicalize(CS, request());
    expect(viewOf(CS, state)).toBe(state.json);
    expect(viewOf(CS, state)).toEqual(operationView(CS, state.message));
  });

  it('is a separate render without the secrets for a type that has them', () => {
    expect(schema.message(CP).hasSecret).toBe(true);
    const state = canonicalize(CP, {
      provider: { metadata: { name: 'github' }, type: 'github', credentials: { TOKEN: 'ghp_secret' } },
    });
    const view = viewOf(CP, state);
    expect(view).not.toBe(state.json);
    expect(view).toEqual(operationView(CP, state.message));
    expect(JSON.stringify(view)).not.toContain('ghp_secret');
  });
});
