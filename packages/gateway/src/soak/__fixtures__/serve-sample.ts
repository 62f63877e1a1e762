// Entry point of a sample interceptor run as its own process for the soak:
//   SOAK_MODULE=/abs/examples/quota/src/index.ts SOAK_LISTEN=unix:///abs/quota.sock \
//   SOAK_PUBLIC_KEY=/abs/gateway.pub.pem node --conditions=source --import tsx serve-sample.ts
// Serves the module's default export with the SDK, verifying the gateway's tokens.
// Prints `READY <address>` once it listens; SIGTERM shuts it down gracefully.
import { pathToFileURL } from 'node:url';
import { type Interceptor, serve } from '@openshell-interceptors/sdk';
import { pino } from 'pino';

const { SOAK_MODULE, SOAK_LISTEN, SOAK_PUBLIC_KEY } = process.env;
if (!SOAK_MODULE || !SOAK_LISTEN || !SOAK_PUBLIC_KEY) {
  process.stderr.write('serve-sample: set SOAK_MODULE, SOAK_LISTEN and SOAK_PUBLIC_KEY\n');
  process.exit(2);
}
const mod = (await import(pathToFileURL(SOAK_MODULE).href)) as { default?: Interceptor };
if (!mod.default) throw new Error(`${SOAK_MODULE} has no default export`);
const server = await serve(mod.default, {
  listen: SOAK_LISTEN,
  auth: { publicKeyFile: SOAK_PUBLIC_KEY },
  logger: pino({ level: 'error' }, pino.destination(2)),
  handleSignals: true,
  shutdownGraceMs: 2_000,
});
process.stdout.write(`READY ${server.address}\n`);
await server.closed;
// The audit sample queues records; write them all out before exiting.
await (mod.default as { auditLog?: { close(): Promise<void> } }).auditLog?.close();
process.exit(0);
