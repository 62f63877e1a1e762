// Parent side of host.ts: start a server process, wait until it listens, stop it.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HostMessage, HostSpec } from './host.js';

const HOST = fileURLToPath(new URL('./host.js', import.meta.url));

export interface Host {
  readonly addresses: readonly string[];
  /** CPU time (ms) and RSS of the server process so far; `gc` forces a collection first. */
  usage(gc?: boolean): Promise<{ cpuMs: number; rss: number }>;
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
// Never leave server processes behind, whatever way the runner ends.
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface HostOptions {
  /** Write a V8 CPU profile of the server process here (node --cpu-prof). */
  readonly cpuProfDir?: string;
}

export async function startHost(spec: HostSpec, opts: HostOptions = {}): Promise<Host> {
  const child = fork(HOST, [JSON.stringify(spec)], {
    execArgv: [
      '--expose-gc',
      ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : []),
    ],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(child));

  const ready = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server process not ready in 30 s\n${stderr}`)), 30_000);
    child.on('message', function onReady(m: HostMessage) {
      if (m.type === 'ready' || m.type === 'error') {
        clearTimeout(timer);
        child.off('message', onReady);
        if (m.type === 'ready') resolve(m.addresses);
        else reject(new Error(`server process failed: ${m.message}\n${stderr}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server process exited (${code}) before it was ready\n${stderr}`));
    });
  }).catch(async (e: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw e;
  });

  return {
    addresses: ready,
    usage: (gc = false) =>
      new Promise((resolve, reject) => {
        const onMessage = (m: HostMessage) => {
          if (m.type !== 'usage') return;
          child.off('message', onMessage);
          resolve({ cpuMs: m.cpuMs, rss: m.rss });
        };
        child.on('message', onMessage);
        if (!child.send({ type: gc ? 'gc' : 'usage' })) reject(new Error('server process is gone'));
      }),
    async close() {
      if (child.exitCode === null && child.connected) child.send({ type: 'close' });
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
