import {
  normalizeProfileId,
  type openshellV1,
  ProtoJsonError,
  type ProviderProfileSnapshot,
  parseProtoJson,
  providerProfileRevision,
} from '@openshell-interceptors/protocol';
import type { ContractSettings } from './contract.js';
import { callScope } from './deadline.js';
import { ContractViolationError, EvaluateError } from './errors.js';
import type {
  EvaluateContext,
  ProviderProfileInput,
  ProviderProfilesOptions,
  ProviderProfilesProvider,
  ProviderProfilesResult,
} from './types.js';

const PROFILE_TYPE = 'openshell.v1.ProviderProfile';

/**
 * Call the author's provider and build the snapshot: profiles parsed strictly,
 * at least one, ids unique after normalisation, and the revision defaulted to the
 * content digest of CONTRACT section 9 (stable while the content is).
 */
export async function snapshotFromProvider(
  interceptor: string,
  provider: ProviderProfilesProvider,
  opts: ProviderProfilesOptions,
  ctx: EvaluateContext | undefined,
  settings: ContractSettings,
): Promise<ProviderProfileSnapshot> {
  const scope = callScope(ctx);
  let returned: readonly ProviderProfileInput[] | ProviderProfilesResult;
  try {
    returned = await scope.race(async () => provider({ signal: scope.signal }));
  } catch (err) {
    if (err instanceof EvaluateError) throw err;
    settings.logger.error({ err, interceptor }, 'provider profile source threw; answering INTERNAL');
    throw new EvaluateError('INTERNAL', 'provider profile source failed', { cause: err });
  } finally {
    scope.dispose();
  }

  const invalid = (message: string): never => {
    const err = new ContractViolationError('invalid-provider-snapshot', message, { interceptor });
    if (settings.strict) throw err;
    settings.logger.error({ rule: err.rule, interceptor }, err.message);
    throw new EvaluateError(
      'FAILED_PRECONDITION',
      'the interceptor produced an invalid provider profile snapshot',
      {
        cause: err,
      },
    );
  };

  const inputs = Array.isArray(returned)
    ? (returned as readonly ProviderProfileInput[])
    : (returned as ProviderProfilesResult | undefined)?.profiles;
  if (!Array.isArray(inputs)) invalid('the provider must return profiles or { profiles, revision? }');
  const list = inputs as readonly ProviderProfileInput[];
  if (list.length === 0) invalid('a snapshot must hold at least one profile');
  const seen = new Map<string, number>();
  const profiles = list.map((json, i) => {
    let p: openshellV1.ProviderProfile | undefined;
    try {
      p = parseProtoJson<openshellV1.ProviderProfile>(PROFILE_TYPE, json);
    } catch (err) {
      invalid(
        `profile ${i} is not a valid ${PROFILE_TYPE}: ${err instanceof ProtoJsonError ? err.message : String(err)}`,
      );
    }
    const profile = p as openshellV1.ProviderProfile;
    const id = normalizeProfileId(profile.id);
    if (id === '') invalid(`profile ${i} has no id`);
    const prev = seen.get(id);
    if (prev !== undefined)
      invalid(`profiles ${prev} and ${i} share the id '${id}' (ids are compared trimmed and lower-cased)`);
    seen.set(id, i);
    return profile;
  });
  const given = Array.isArray(returned) ? undefined : (returned as ProviderProfilesResult).revision;
  const revision = (given ?? opts.revision ?? '').trim() || providerProfileRevision(profiles);
  return { revision, profiles };
}
