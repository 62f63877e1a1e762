// Child process entry: hosts the interceptor servers of a comparison, so the load generator
// and the server do not share one event loop (the machine has 2 cores: one each).
// Protocol over the IPC channel: the parent passes a HostSpec as argv[2]; the child answers
// { type: 'ready', addresses } (or { type: 'error', message }), then serves until it gets
// { type: 'close' } or the parent goes away. { type: 'usage' } answers { type: 'usage', cpuMs, rss };
// { type: 'gc' } forces two garbage collections first (the child runs with --expose-gc).
import { allow, interceptor, patch, serve } from '@openshell-interceptors/sdk';
import { pino } from 'pino';
import { type BareSpec, startBare } from './bare.js';
import { BENCH_PATCH } from './payload.js';

export interface SdkSpec {
  readonly kind: 'sdk';
  readonly name: string;
  readonly listen: string;
  readonly auth?: { readonly publicKeyPem: string; readonly keyId: string; readonly audience: string };
  /** A validate binding that reads the operation, instead of the modify binding with one patch. */
  readonly validateOnly?: boolean;
  /** pino level of the SDK's per-evaluation log line (default warn: the bare server logs nothing). */
  readonly logLevel?: string;
}

export type ServerSpec = SdkSpec | ({ readonly kind: 'bare' } & BareSpec);

export interface HostSpec {
  readonly servers: readonly ServerSpec[];
}

export type HostMessage =
  | { type: 'ready'; addresses: string[] }
  | { type: 'error'; message: string }
  | { type: 'usage'; cpuMs: number; rss: number };

async function start(spec: ServerSpec): Promise<{ address: string; close(): Promise<void> }> {
  if (spec.kind === 'bare') return startBare(spec);
  const logger = pino({ level: spec.logLevel ?? 'warn' }, pino.destination({ dest: 2, sync: false }));
  // The SDK twin of the bare modifier: one explicit patch, no draft edits.
  const i = interceptor(spec.name, {
    logger,
    ...(spec.auth ? { expectedAudience: spec.auth.audience } : {}),
  });
  if (spec.validateOnly)
    i.validate('CreateSandbox', ({ operation }) => (operation.name ? allow() : undefined));
  else i.modify('CreateSandbox', () => [patch.add(BENCH_PATCH.path, BENCH_PATCH.value)]);
  const s = await serve(i, {
    listen: spec.listen,
    logger,
    maxReceiveBytes: 8 * 1024 * 1024,
    ...(spec.auth
      ? { auth: { publicKey: spec.auth.publicKeyPem, keyId: spec.auth.keyId, audience: spec.auth.audience } }
      : { insecure: true }),
  });
  return { address: s.address, close: () => s.close({ graceMs: 1_000 }) };
}

async function main(): Promise<void> {
  const send = (m: HostMessage) => process.send?.(m);
  const spec = JSON.parse(process.argv[2] ?? '{}') as HostSpec;
  const running: { address: string; close(): Promise<void> }[] = [];
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await Promise.allSettled(running.map((r) => r.close()));
    process.exit(0);
  };
  process.on('disconnect', () => void shutdown());
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'close') void shutdown();
    else if (m.type === 'usage' || m.type === 'gc') {
      if (m.type === 'gc') {
        globalThis.gc?.();
        globalThis.gc?.();
      }
      const u = process.cpuUsage();
      send({ type: 'usage', cpuMs: (u.user + u.system) / 1000, rss: process.memoryUsage.rss() });
    }
  });
  try {
    for (const s of spec.servers) running.push(await start(s));
    send({ type: 'ready', addresses: running.map((r) => r.address) });
  } catch (e) {
    send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    await shutdown();
  }
}

void main();
