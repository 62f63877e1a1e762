import { resolve } from 'node:path';
import type { ConnectAuth } from '@openshell-interceptors/testing';
import { UsageError } from './command.js';

/** The flags `describe` and `check` share to reach and authenticate to an interceptor service. */
export const ENDPOINT_FLAGS = {
  ca: { type: 'string' },
  'gateway-id': { type: 'string' },
  audience: { type: 'string' },
  'private-key': { type: 'string' },
  kid: { type: 'string' },
} as const;

export const ENDPOINT_USAGE = `  <endpoint>             host:port, http://host:port, https://host:port or unix:///absolute/path
  --ca <file>            https: PEM CA bundle that replaces the platform roots
  --private-key <file>   authenticate as the gateway: its Ed25519 signing key (PKCS#8 PEM)
  --kid <id>             the key id in the token header (default openshell-gateway)
  --audience <aud>       the token audience, exactly as the service expects it (required with --private-key)
  --gateway-id <id>      the gateway identity, iss = openshell-gateway:<id> (default openshell)`;

export const DEFAULT_KID = 'openshell-gateway';

interface EndpointValues {
  readonly ca?: string | undefined;
  readonly 'gateway-id'?: string | undefined;
  readonly audience?: string | undefined;
  readonly 'private-key'?: string | undefined;
  readonly kid?: string | undefined;
}

/** The auth and CA options from the shared flags, checked for consistency. */
export function endpointOptions(
  values: EndpointValues,
  cwd: string,
): { auth?: ConnectAuth; caPath?: string } {
  const key = values['private-key'];
  if (!key) {
    for (const flag of ['audience', 'kid', 'gateway-id'] as const)
      if (values[flag] !== undefined) throw new UsageError(`--${flag} only makes sense with --private-key`);
  } else if (!values.audience) {
    throw new UsageError(
      '--audience is required with --private-key (the audience the gateway is configured with, by default urn:openshell:extension:interceptor:<name>)',
    );
  }
  return {
    ...(values.ca ? { caPath: resolve(cwd, values.ca) } : {}),
    ...(key
      ? {
          auth: {
            privateKeyPath: resolve(cwd, key),
            keyId: values.kid ?? DEFAULT_KID,
            audience: values.audience as string,
            ...(values['gateway-id'] ? { gatewayId: values['gateway-id'] } : {}),
          },
        }
      : {}),
  };
}

/** `500ms`, `2s` → milliseconds. */
export function durationFlag(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const m = /^([0-9]+)(ms|s)$/.exec(value);
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`${flag} expects "<integer>ms" or "<integer>s", got '${value}'`);
  return n;
}

/** A positive integer flag. */
export function intFlag(flag: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${flag} expects an integer >= ${min}, got '${value}'`);
  return n;
}
