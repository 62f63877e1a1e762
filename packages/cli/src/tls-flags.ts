import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { StartupError, UsageError } from './command.js';

/** The flags a command that serves gRPC uses for TLS on its listener (`serve`, `policy serve`). */
export const SERVE_TLS_FLAGS = {
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-client-ca': { type: 'string' },
} as const;

export const SERVE_TLS_USAGE = `  --tls-cert <file>      PEM certificate chain (with --tls-key)
  --tls-key <file>       PEM private key
  --tls-client-ca <file> require client certificates signed by this CA (mTLS)`;

interface ServeTlsValues {
  readonly 'tls-cert'?: string | undefined;
  readonly 'tls-key'?: string | undefined;
  readonly 'tls-client-ca'?: string | undefined;
}

/** A PEM file named by `flag`; a file that cannot be read is a startup error naming both. */
export function readPem(file: string, flag: string, cwd: string): Buffer {
  try {
    return readFileSync(resolve(cwd, file));
  } catch (err) {
    throw new StartupError(
      `${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** Check the combination of the listener TLS flags (usage errors), before anything starts. */
export function checkServeTlsFlags(values: ServeTlsValues): void {
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  if (values['tls-client-ca'] && !values['tls-cert'])
    throw new UsageError('--tls-client-ca needs --tls-cert and --tls-key');
}

/** The SDK's `serve` TLS options from the flags (files read now), or nothing for plaintext. */
export function serveTlsOptions(
  values: ServeTlsValues,
  cwd: string,
): { tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer } } {
  checkServeTlsFlags(values);
  const cert = values['tls-cert'];
  if (!cert) return {};
  const clientCa = values['tls-client-ca'];
  return {
    tls: {
      cert: readPem(cert, '--tls-cert', cwd),
      key: readPem(values['tls-key'] as string, '--tls-key', cwd),
      ...(clientCa ? { clientCa: readPem(clientCa, '--tls-client-ca', cwd) } : {}),
    },
  };
}
