import { describe, expect, it } from 'vitest';
import { defaultAudience, gatewayIssuer } from './auth.js';
import { principalList, principalSubject, readPrincipal } from './principal.js';

describe('principal', () => {
  it('reads the documented kinds and maps anything else to unknown', () => {
    expect(readPrincipal({ kind: 'user', subject: 'alice' })).toEqual({ kind: 'user', subject: 'alice' });
    expect(readPrincipal({ kind: 'sandbox', sandbox_id: 's1' }).kind).toBe('sandbox');
    expect(readPrincipal({ kind: 'anonymous' }).kind).toBe('anonymous');
    expect(readPrincipal({}).kind).toBe('unknown');
    expect(readPrincipal({ kind: 'robot', subject: 'r' })).toEqual({ kind: 'unknown', subject: 'r' });
  });

  it('splits comma-joined roles and scopes', () => {
    expect(principalList(' admin, dev ,,ops')).toEqual(['admin', 'dev', 'ops']);
    expect(principalList(undefined)).toEqual([]);
  });

  it('picks a subject for logs and quotas', () => {
    expect(principalSubject({ kind: 'user', subject: 'alice' })).toBe('alice');
    expect(principalSubject({ kind: 'sandbox', sandbox_id: 'sb-1' })).toBe('sb-1');
    expect(principalSubject({ kind: 'anonymous' })).toBe('anonymous');
  });
});

describe('token facts', () => {
  it('derives issuer and default audience', () => {
    expect(gatewayIssuer()).toBe('openshell-gateway:openshell');
    expect(gatewayIssuer('gw-2')).toBe('openshell-gateway:gw-2');
    expect(defaultAudience('naming')).toBe('urn:openshell:extension:interceptor:naming');
  });
});
