import { describe, expect, it } from 'vitest';
import { ProviderProfile } from './gen/openshell/v1/openshell.js';
import { providerProfileRevision } from './provider-profiles.js';

describe('provider profile revision', () => {
  const a = ProviderProfile.fromPartial({ id: 'github', displayName: 'GitHub' });
  const b = ProviderProfile.fromPartial({ id: 'Anthropic', displayName: 'Anthropic' });

  it('is sha256: plus 64 hex digits, stable across calls and input order', () => {
    const r = providerProfileRevision([a, b]);
    expect(r).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(providerProfileRevision([b, a])).toBe(r);
  });

  it('changes when any profile content changes', () => {
    const changed = ProviderProfile.fromPartial({ id: 'github', displayName: 'GitHub Enterprise' });
    expect(providerProfileRevision([changed, b])).not.toBe(providerProfileRevision([a, b]));
  });
});
