import { JsonPointerError } from '@openshell-interceptors/protocol';
import { describe, expect, it } from 'vitest';
import { allow, deny, patch, pointer } from './results.js';

describe('result helpers', () => {
  it('build allow and deny decisions', () => {
    expect(allow()).toEqual({ decision: 'allow' });
    expect(allow({ annotations: { a: 'b' } })).toEqual({ decision: 'allow', annotations: { a: 'b' } });
    expect(deny('INVALID_ARGUMENT', 'rename it')).toEqual({
      decision: 'deny',
      code: 'INVALID_ARGUMENT',
      reason: 'rename it',
    });
  });

  it('escape path segments into JSON Pointers and check pointer strings', () => {
    expect(pointer(['labels', 'example.com/team', 'a~b', 0])).toBe('/labels/example.com~1team/a~0b/0');
    expect(pointer('/spec/providers/-')).toBe('/spec/providers/-');
    expect(() => pointer('labels')).toThrow(JsonPointerError);
    expect(() => pointer('/a~2')).toThrow(JsonPointerError);
  });

  it('build all six patch operations', () => {
    expect([
      patch.add(['a'], 1),
      patch.replace('/b', 'x'),
      patch.remove(['c', 'd/e']),
      patch.move('/f', ['g']),
      patch.copy(['h'], '/i'),
      patch.test('/j', null),
    ]).toEqual([
      { op: 'add', path: '/a', value: 1 },
      { op: 'replace', path: '/b', value: 'x' },
      { op: 'remove', path: '/c/d~1e' },
      { op: 'move', from: '/f', path: '/g' },
      { op: 'copy', from: '/h', path: '/i' },
      { op: 'test', path: '/j', value: null },
    ]);
  });
});
