// What every comparison gets from the runner.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Budget {
  /** Length of one measurement window of one side, ms. */
  readonly windowMs: number;
  readonly rounds: number;
  /** Unmeasured windows of each side before the rounds of each cell. */
  readonly warmup: number;
  /** Load on each side before its first cell, to reach steady state (see `steadyWarmup`), ms. */
  readonly steadyMs: number;
}

export interface BenchContext {
  readonly quick: boolean;
  readonly budget: Budget;
  /** A private (0700) temporary directory for unix sockets and key files. */
  readonly dir: string;
  /** Progress lines go to stderr; stdout is the report. */
  progress(line: string): void;
  /** Write V8 CPU profiles of server processes here, when profiling. */
  readonly cpuProfDir?: string;
}

export interface Keys {
  readonly privateKey: KeyObject;
  readonly privateKeyPath: string;
  readonly publicKeyPem: string;
  readonly keyId: string;
}

export async function makeKeys(dir: string, keyId = 'bench-key'): Promise<Keys> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateKeyPath = join(dir, `${keyId}.pem`);
  await writeFile(privateKeyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return {
    privateKey,
    privateKeyPath,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId,
  };
}

export async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'osi-bench-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
