import { openshellV1, providerProfileRevision } from '@openshell-interceptors/protocol';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ContractViolationError, EvaluateError } from './errors.js';
import { interceptor } from './interceptor.js';

describe('provider profiles', () => {
  it('fills the revision with the stable content digest when the author gives none', async () => {
    const i = interceptor('catalog').providerProfiles(() => [
      { id: 'github', displayName: 'GitHub', category: 'PROVIDER_PROFILE_CATEGORY_UNSPECIFIED' },
      { id: 'anthropic', displayName: 'Anthropic' },
    ]);
    const snap = await i.snapshotProviderProfiles();
    expect(snap.profiles.map((p) => p.id)).toEqual(['github', 'anthropic']);
    expect(snap.revision).toBe(providerProfileRevision(snap.profiles));
    expect(snap.revision).toBe(
      providerProfileRevision([
        openshellV1.ProviderProfile.fromPartial({ id: 'anthropic', displayName: 'Anthropic' }),
        openshellV1.ProviderProfile.fromPartial({ id: 'github', displayName: 'GitHub' }),
      ]),
    );
    expect((await i.snapshotProviderProfiles()).revision).toBe(snap.revision);
  });

  it('keeps a revision given by the provider or the options', async () => {
    const a = interceptor('a').providerProfiles(async () => ({ revision: 'v7', profiles: [{ id: 'x' }] }));
    expect((await a.snapshotProviderProfiles()).revision).toBe('v7');
    const b = interceptor('b').providerProfiles(() => [{ id: 'x' }], { revision: 'fixed' });
    expect((await b.snapshotProviderProfiles()).revision).toBe('fixed');
  });

  it('refuses empty snapshots, duplicate ids and invalid profiles (strict: ContractViolationError)', async () => {
    const bad = [
      () => [],
      () => [{ id: 'GitHub' }, { id: ' github ' }],
      () => [{ id: 'x', bogusField: 1 } as never],
      () => [{ displayName: 'no id' }],
    ];
    const messages: string[] = [];
    for (const fn of bad) {
      const err = await interceptor('p', { strict: true })
        .providerProfiles(fn)
        .snapshotProviderProfiles()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ContractViolationError);
      expect((err as ContractViolationError).rule).toBe('invalid-provider-snapshot');
      messages.push((err as Error).message);
    }
    expect(messages[0]).toMatch(/at least one profile/);
    expect(messages[1]).toMatch(/share the id 'github'/);
    expect(messages[2]).toMatch(/bogusField/);
    expect(messages[3]).toMatch(/has no id/);
  });

  it('outside strict mode an invalid snapshot fails with FAILED_PRECONDITION and a thrown provider with INTERNAL', async () => {
    const logger = pino({ level: 'silent' });
    const empty = interceptor('p', { strict: false, logger }).providerProfiles(() => []);
    await expect(empty.snapshotProviderProfiles()).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    const throws = interceptor('p', { strict: false, logger }).providerProfiles(() => {
      throw new Error('catalog db down');
    });
    const err = await throws.snapshotProviderProfiles().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EvaluateError);
    expect(err).toMatchObject({ code: 'INTERNAL', message: 'provider profile source failed' });
  });

  it('answers UNIMPLEMENTED when no provider is registered', async () => {
    await expect(interceptor('none').snapshotProviderProfiles()).rejects.toMatchObject({
      code: 'UNIMPLEMENTED',
    });
  });
});
