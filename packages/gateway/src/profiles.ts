import {
  normalizeProfileId,
  type openshellV1,
  providerProfileRevision,
} from '@openshell-interceptors/protocol';
import type { ProviderProfileSource } from './config.js';
import { errorMessage, ProviderProfileError } from './errors.js';
import { toTransportError } from './transport.js';

type ProviderProfile = openshellV1.ProviderProfile;

type ProfileList =
  | readonly ProviderProfile[]
  | (() => readonly ProviderProfile[] | Promise<readonly ProviderProfile[]>);

/** The gateway's own catalogs behind the `builtin` and `user` sources (empty when not given). */
export interface ProviderProfileInputs {
  readonly builtin?: ProfileList;
  readonly user?: ProfileList;
}

export interface ProviderProfileSourceSnapshot {
  /** `builtin`, `user` or `interceptor:<name>`. */
  readonly source: string;
  readonly revision: string;
  readonly profiles: readonly ProviderProfile[];
}

export interface ProviderProfileCatalog {
  /** Stable digest over every profile (CONTRACT section 9 rule), unchanged while content is unchanged. */
  readonly revision: string;
  /** In configured source order. */
  readonly sources: readonly ProviderProfileSourceSnapshot[];
  /** Every profile, in source order. */
  readonly profiles: readonly ProviderProfile[];
}

async function listOf(l: ProfileList | undefined): Promise<readonly ProviderProfile[]> {
  if (l === undefined) return [];
  return typeof l === 'function' ? await l() : l;
}

/**
 * Aggregate provider profiles over the configured sources (CONTRACT section 9): an
 * interceptor snapshot must hold at least one profile; ids are normalised and unique
 * within and across sources; a blank revision becomes the stable sha256 digest.
 * Transport failures are UNAVAILABLE, invalid snapshots FAILED_PRECONDITION.
 */
export async function aggregateProviderProfiles(
  sources: readonly ProviderProfileSource[],
  inputs: ProviderProfileInputs | undefined,
  snapshot: (interceptor: string) => Promise<{ revision: string; profiles: ProviderProfile[] }>,
): Promise<ProviderProfileCatalog> {
  const out: ProviderProfileSourceSnapshot[] = [];
  const owner = new Map<string, string>();
  for (const src of sources) {
    const label = src.type === 'interceptor' ? `interceptor:${src.name}` : src.type;
    let profiles: readonly ProviderProfile[];
    let revision: string;
    if (src.type === 'interceptor') {
      let snap: { revision: string; profiles: ProviderProfile[] };
      try {
        snap = await snapshot(src.name);
      } catch (e) {
        const t = toTransportError(e);
        throw new ProviderProfileError(
          'UNAVAILABLE',
          `${label}: SnapshotProviderProfiles failed: ${t.message}`,
          label,
        );
      }
      if (snap.profiles.length === 0)
        throw new ProviderProfileError('FAILED_PRECONDITION', `${label}: snapshot holds no profiles`, label);
      profiles = snap.profiles;
      revision = snap.revision.trim() === '' ? providerProfileRevision(profiles) : snap.revision;
    } else {
      try {
        profiles = await listOf(src.type === 'builtin' ? inputs?.builtin : inputs?.user);
      } catch (e) {
        throw new ProviderProfileError('UNAVAILABLE', `${label}: ${errorMessage(e)}`, label);
      }
      revision = providerProfileRevision(profiles);
    }
    const local = new Set<string>();
    for (const p of profiles) {
      const id = normalizeProfileId(p.id);
      if (id === '')
        throw new ProviderProfileError('FAILED_PRECONDITION', `${label}: a profile has an empty id`, label);
      if (local.has(id))
        throw new ProviderProfileError(
          'FAILED_PRECONDITION',
          `${label}: profile id '${id}' appears twice`,
          label,
        );
      local.add(id);
      const prior = owner.get(id);
      if (prior)
        throw new ProviderProfileError(
          'FAILED_PRECONDITION',
          `${label}: profile id '${id}' is already provided by ${prior}`,
          label,
        );
      owner.set(id, label);
    }
    out.push({ source: label, revision, profiles });
  }
  const all = out.flatMap((s) => s.profiles);
  return { revision: providerProfileRevision(all), sources: out, profiles: all };
}
