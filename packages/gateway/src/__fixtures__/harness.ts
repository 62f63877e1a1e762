// Helpers shared by the gateway tests: keys, configs, log capture.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { exportJWK, type JWK } from 'jose';
import pino from 'pino';
import { afterEach } from 'vitest';
import { type GatewayConfig, parseGatewayConfig } from '../config.js';

export interface KeyFiles {
  readonly dir: string;
  readonly privateKeyPath: string;
  readonly jwk: JWK;
  cleanup(): Promise<void>;
}

/** A fresh Ed25519 key pair: the private key as a PEM file, the public one as a JWK. */
export async function makeKeys(kid = 'test-key'): Promise<KeyFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-keys-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateKeyPath = join(dir, 'gateway.pem');
  await writeFile(privateKeyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  return { dir, privateKeyPath, jwk, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** One `[[openshell.gateway.interceptors]]` table from a plain object (values as TOML literals). */
export function interceptorToml(fields: Record<string, unknown>): string {
  const lines = Object.entries(fields).map(([k, v]) => `${k} = ${toToml(v)}`);
  return `[[openshell.gateway.interceptors]]\n${lines.join('\n')}\n`;
}

function toToml(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(toToml).join(', ')}]`;
  if (typeof v === 'object' && v !== null)
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${k} = ${toToml(x)}`)
      .join(', ')} }`;
  throw new Error(`cannot render ${String(v)}`);
}

/** A gateway config: insecure transport unless keys are given. */
export function configFor(
  interceptors: Record<string, unknown>[],
  gateway: Record<string, unknown> = {},
  keys?: KeyFiles,
): GatewayConfig {
  const gw: Record<string, unknown> = { ...gateway };
  if (keys) {
    gw.jwt_private_key_path = keys.privateKeyPath;
    gw.jwt_key_id = String(keys.jwk.kid);
  }
  const head = Object.entries(gw)
    .map(([k, v]) => `${k} = ${toToml(v)}`)
    .join('\n');
  const body = interceptors
    .map((ic) =>
      interceptorToml(
        keys || 'allow_insecure_transport' in ic ? ic : { allow_insecure_transport: true, ...ic },
      ),
    )
    .join('\n');
  return parseGatewayConfig(`[openshell.gateway]\n${head}\n\n${body}`, { source: 'test.toml' });
}

export interface LogCapture {
  readonly logger: pino.Logger;
  readonly lines: Record<string, unknown>[];
  messages(level?: 'info' | 'warn'): string[];
}

/** A pino logger that keeps every line as parsed JSON. */
export function captureLogs(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return {
    logger,
    lines,
    messages: (level) =>
      lines
        .filter((l) => level === undefined || l.level === (level === 'warn' ? 40 : 30))
        .map((l) => String(l.msg)),
  };
}

/**
 * Register, at module level, one `afterEach` that undoes what each test started: `defer(fn)`
 * adds an undo step; after the test they run last-added first (gateways before the
 * interceptors they call, everything before the directory it lives in).
 */
export function deferAfterEach(): (undo: () => unknown) => void {
  const pending: (() => unknown)[] = [];
  afterEach(async () => {
    for (const undo of pending.splice(0).reverse()) await undo();
  });
  return (undo) => {
    pending.push(undo);
  };
}
