import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ScriptSpec } from './interceptor-server.js';

const ENTRY = fileURLToPath(new URL('./child-server.ts', import.meta.url));

export interface ChildFixture {
  readonly endpoint: string;
  readonly process: ChildProcess;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/** Run the fixture interceptor as a real separate process; resolves when it listens. */
export function spawnFixture(script: ScriptSpec, opts: { unixPath?: string } = {}): Promise<ChildFixture> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', ENTRY], {
    env: {
      ...process.env,
      FIXTURE_SCRIPT: JSON.stringify(script),
      ...(opts.unixPath ? { FIXTURE_UNIX: opts.unixPath } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`fixture did not start in time: ${err}`));
    }, 20_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ endpoint: m[1], process: child, kill });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fixture exited with ${code}: ${err}`));
    });
  });
}
