// The changed-paths check and the copy along a pointer (their exactness against the full
// parse under arbitrary patches is a property test in the SDK, which applies the patches).
import { describe, expect, it } from 'vitest';
import { copyAlongPointer, copyForPatchOperation } from './pointer.js';
import { checkChangedProtoJson } from './view.js';

describe('checkChangedProtoJson', () => {
  it('names the problem at the changed path', () => {
    const type = 'openshell.v1.CreateSandboxRequest';
    const doc = { name: 'a', labels: { team: 5 } };
    expect(() => checkChangedProtoJson(type, doc, ['/labels/team'])).toThrow('/labels/team');
    expect(() => checkChangedProtoJson(type, { name: 'a', nope: 1 }, ['/nope'])).toThrow(
      'unknown field "nope"',
    );
    expect(() => checkChangedProtoJson(type, { name: 'a', labels: { x: null } }, ['/labels/x'])).toThrow(
      'a map value cannot be null',
    );
    expect(() =>
      checkChangedProtoJson(type, { spec: { logLevel: 'x', log_level: 'y' } }, ['/spec/log_level']),
    ).toThrow('given twice');
  });
});

describe('copyAlongPointer', () => {
  it('copies each container on the path once and shares everything else', () => {
    const doc = { a: { b: { c: 1 }, d: [1, { e: 2 }] }, f: { g: 3 } };
    const copies = new WeakSet<object>();
    const out = copyAlongPointer(doc, '/a/d/1/e', copies) as typeof doc;
    expect(out).not.toBe(doc);
    expect(out.a).not.toBe(doc.a);
    expect(out.a.d).not.toBe(doc.a.d);
    expect(out.a.d[1]).not.toBe(doc.a.d[1]);
    expect(out.a.b).toBe(doc.a.b);
    expect(out.f).toBe(doc.f);
    expect(out).toEqual(doc);
    // A second path through the same containers reuses the copies.
    const again = copyAlongPointer(out, '/a/b/c', copies) as typeof doc;
    expect(again).toBe(out);
    expect(again.a).toBe(out.a);
    expect(again.a.b).not.toBe(doc.a.b);
  });

  it('stops where the path leaves the document and never follows inherited names', () => {
    const doc = { a: 'leaf', o: {} as Record<string, unknown> };
    const out = copyAlongPointer(doc, '/o/__proto__/polluted', new WeakSet()) as typeof doc;
    expect(Object.getPrototypeOf(out.o)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(copyAlongPointer(doc, '/a/b/c', new WeakSet())).toEqual(doc);
    expect(copyAlongPointer('scalar', '/x', new WeakSet())).toBe('scalar');
  });
});

describe('copyAlongPointer with overlays', () => {
  it('reads, writes and deletes like a copy (key order included) and never touches the original', () => {
    const labels: Record<string, unknown> = { b: '1', a: '2', '10': 'x', '2': 'y' };
    const doc = { labels };
    const before = structuredClone(doc);
    const out = copyAlongPointer(doc, '/labels/new', new WeakSet(), { overlay: true }) as typeof doc;
    const o = out.labels as Record<string, unknown>;
    o.new = 'n';
    o['1'] = 'one';
    delete o.b;
    o.a = 'changed';
    o.b = 'back';
    const copy: Record<string, unknown> = { ...labels };
    copy.new = 'n';
    copy['1'] = 'one';
    delete copy.b;
    copy.a = 'changed';
    copy.b = 'back';
    expect(JSON.stringify(o)).toBe(JSON.stringify(copy));
    expect(Object.keys(o)).toEqual(Object.keys(copy));
    expect(Object.hasOwn(o, 'b')).toBe(true);
    expect('toString' in o).toBe(true);
    expect(Object.hasOwn(o, 'toString')).toBe(false);
    expect(doc).toEqual(before);
  });
});

describe('copyForPatchOperation', () => {
  it('copies the item a move out of the same list shifts into place', () => {
    const items = [{ a: 1 }, { b: 2 }, { c: 3 }];
    const doc = { items };
    const out = copyForPatchOperation(
      doc,
      { op: 'move', from: '/items/0', path: '/items/1/x' },
      new WeakSet(),
    ) as {
      items: object[];
    };
    // After removing item 0, "/items/1" is today's item 2: it must be a copy too.
    expect(out.items[2]).not.toBe(items[2]);
    expect(out.items[1]).not.toBe(items[1]);
    expect(out.items[0]).toBe(items[0]);
  });
});
