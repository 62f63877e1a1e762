import { canonicalize, operationView, ROUTES, toProtoJson } from '@openshell-interceptors/protocol';
import { describe, expect, it } from 'vitest';
import {
  principals,
  REQUEST_FIXTURES,
  RESPONSE_FIXTURES,
  requestFixture,
  responseFixture,
} from './fixtures.js';

describe('fixtures', () => {
  for (const r of ROUTES) {
    it(`${r.method}: the request fixture is a valid, canonical, non-empty ${r.requestType}`, () => {
      const { json } = canonicalize(r.requestType, REQUEST_FIXTURES[r.method]);
      expect(json).toEqual(REQUEST_FIXTURES[r.method]);
      expect(Object.keys(json).length).toBeGreaterThan(0);
    });

    it(`${r.method}: the response fixture is a valid, canonical ${r.responseType}`, () => {
      const { json } = canonicalize(r.responseType, RESPONSE_FIXTURES[r.method]);
      expect(json).toEqual(RESPONSE_FIXTURES[r.method]);
    });
  }

  it('carries secrets where the wire has them, so secret removal is exercised', () => {
    const { message } = canonicalize('openshell.v1.CreateProviderRequest', REQUEST_FIXTURES.CreateProvider);
    expect(JSON.stringify(toProtoJson('openshell.v1.CreateProviderRequest', message))).toContain('ghp_');
    expect(JSON.stringify(operationView('openshell.v1.CreateProviderRequest', message))).not.toContain(
      'ghp_',
    );
  });

  it('varies a fixture by deep-merge overlay without touching the shared copy', () => {
    const r = requestFixture('CreateSandbox', {
      name: 'Team-A',
      labels: { tier: 'gpu' },
      spec: { tty: true },
    });
    expect(r.name).toBe('Team-A');
    expect(r.labels).toEqual({ team: 'ml', tier: 'gpu' });
    expect(r.spec?.tty).toBe(true);
    expect(r.spec?.template?.image).toBe('ghcr.io/acme/agent:1.2');
    expect(REQUEST_FIXTURES.CreateSandbox.name).toBe('dev-alice-1');
  });

  it('removes a field when the overlay sets it to undefined, and varies by function', () => {
    expect(requestFixture('CreateSandbox', { name: undefined }).name).toBeUndefined();
    const r = responseFixture('DeleteSandbox', (d) => {
      d.deleted = false;
    });
    expect(r).toEqual({ deleted: false });
    expect(RESPONSE_FIXTURES.DeleteSandbox).toEqual({ deleted: true });
  });

  it('builds principals the way the gateway sends them', () => {
    expect(principals.user('bob', { roles: ['admin', 'dev'] })).toEqual({
      kind: 'user',
      subject: 'bob',
      provider: 'oidc',
      roles: 'admin,dev',
    });
    expect(principals.sandbox().kind).toBe('sandbox');
    expect(principals.anonymous()).toEqual({ kind: 'anonymous' });
    expect(principals.unknown()).toEqual({ kind: 'unknown' });
  });
});
