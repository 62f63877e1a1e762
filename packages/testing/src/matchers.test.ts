import naming from '@openshell-interceptors/example-naming';
import { allow, interceptor } from '@openshell-interceptors/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallResult, type TestGateway, testGateway } from './gateway.js';
import './vitest.js';

let gw: TestGateway;
let patched: CallResult;
let denied: CallResult;

const tagger = interceptor('tagger').validate('CreateSandbox', () =>
  allow({ annotations: { tier: 'gold', region: 'eu' } }),
);

beforeAll(async () => {
  gw = await testGateway([naming, tagger]);
  patched = await gw.call('CreateSandbox', { name: 'Team-A', labels: { a: 'b' } });
  denied = await gw.call('CreateSandbox', { name: 'root' });
});
afterAll(() => gw.close());

/** The message of a failing assertion. */
function failure(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the assertion passed');
}

describe('matchers', () => {
  it('toBeAllowed fails on a denial and lists every evaluation', () => {
    const msg = failure(() => expect(denied).toBeAllowed());
    expect(msg).toContain('expected the call to be allowed');
    expect(msg).toContain('denied with INVALID_ARGUMENT');
    expect(msg).toMatch(/validate\s+naming\/create-sandbox: deny: sandbox name "root" is reserved/);
  });

  it('toBeDenied checks the code and the reason (exact string or RegExp)', () => {
    expect(denied).toBeDenied();
    expect(denied).toBeDenied('INVALID_ARGUMENT', /reserved/);
    expect(failure(() => expect(denied).toBeDenied('NOT_FOUND'))).toContain(
      'its code is INVALID_ARGUMENT, not NOT_FOUND',
    );
    expect(failure(() => expect(denied).toBeDenied('INVALID_ARGUMENT', 'reserved'))).toMatch(
      /does not equal "reserved"/,
    );
    expect(failure(() => expect(patched).toBeDenied())).toContain('it was allowed');
    expect(failure(() => expect(patched).toBeDenied('NOPE' as never))).toContain(
      'is not a gRPC status code name',
    );
  });

  it('toBePatched needs an applied patch there and the value in the final operation', () => {
    expect(patched).toBePatched('/name', 'team-a');
    expect(failure(() => expect(patched).toBePatched('/name', 'Team-A'))).toContain(
      'the final operation has "team-a" at /name',
    );
    // The value is there, but no patch put it there.
    expect(failure(() => expect(patched).toBePatched('/labels/a', 'b'))).toContain(
      'no applied patch touched /labels/a',
    );
    expect(failure(() => expect(patched).toBePatched('/nothing', 1))).toContain('nothing at /nothing');
    expect(failure(() => expect(patched).toBePatched('name', 1))).toContain('is not a JSON Pointer');
    expect(patched).not.toBePatched('/labels/a', 'b');
  });

  it('toHaveFinalOperation matches a deep partial, with asymmetric matchers', () => {
    expect(patched).toHaveFinalOperation({ name: 'team-a' });
    expect(patched).toHaveFinalOperation({ labels: { a: expect.any(String) } });
    const msg = failure(() => expect(patched).toHaveFinalOperation({ labels: { a: 'c' } }));
    expect(msg).toContain('expected the final operation to match');
    expect(msg).toContain('"labels":{"a":"b"}');
  });

  it('toHaveAnnotations merges the evaluations, or filters them by interceptor and phase', () => {
    expect(patched).toHaveAnnotations({ naming: 'lower-cased', tier: 'gold' });
    expect(patched).toHaveAnnotations({ region: 'eu' }, { interceptor: 'tagger', phase: 'validate' });
    expect(patched).not.toHaveAnnotations({ region: 'eu' }, { interceptor: 'naming' });
    expect(failure(() => expect(patched).toHaveAnnotations({ tier: 'silver' }))).toMatch(
      /to include \{"tier":"silver"\}, got/,
    );
  });

  it('says so when given something that is not a call result', () => {
    expect(failure(() => expect({ allowed: true }).toBeAllowed())).toContain(
      'expected the result of gw.call(...) or gateway.intercept(...)',
    );
  });
});
