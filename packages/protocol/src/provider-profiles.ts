import { createHash } from 'node:crypto';
import { ProviderProfile } from './gen/openshell/v1/openshell.js';

/** Domain tag hashed before the profiles (CONTRACT section 9). */
export const PROVIDER_PROFILE_SNAPSHOT_TAG = 'openshell-provider-profile-snapshot-v1';

/** Profile ids are compared after trimming and lower-casing. */
export function normalizeProfileId(id: string): string {
  return id.trim().toLowerCase();
}

/**
 * The stable revision of a snapshot: `sha256:` + hex SHA-256 over the domain tag
 * followed by each profile's protobuf encoding, profiles sorted by normalised id.
 * It changes only when the content does, so the gateway does not reload needlessly.
 */
export function providerProfileRevision(profiles: readonly ProviderProfile[]): string {
  const sorted = [...profiles].sort((a, b) => {
    const x = normalizeProfileId(a.id);
    const y = normalizeProfileId(b.id);
    return x < y ? -1 : x > y ? 1 : 0;
  });
  const h = createHash('sha256').update(PROVIDER_PROFILE_SNAPSHOT_TAG);
  for (const p of sorted) h.update(ProviderProfile.encode(p).finish());
  return `sha256:${h.digest('hex')}`;
}
