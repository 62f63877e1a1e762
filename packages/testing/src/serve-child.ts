// Entry point of `spawnInterceptor`: serves one interceptor module in its own process.
// Reads OPENSHELL_TEST_SERVE (JSON), prints `LISTENING <address>` when ready, and shuts
// down cleanly on SIGTERM (SIGKILL is the crash a test injects).
import { pathToFileURL } from 'node:url';
import { type Interceptor, serve } from '@openshell-interceptors/sdk';
import pino from 'pino';

interface ChildSpec {
  readonly module: string;
  readonly export?: string;
  readonly listen: string;
  readonly auth?: { publicKeyPem: string; keyId?: string; audience?: string; gatewayId?: string };
}

function isInterceptor(v: unknown): v is Interceptor {
  const i = v as Partial<Interceptor> | null;
  return (
    typeof i === 'object' &&
    i !== null &&
    typeof i.evaluate === 'function' &&
    typeof i.manifest === 'function'
  );
}

try {
  const spec = JSON.parse(process.env.OPENSHELL_TEST_SERVE ?? '') as ChildSpec;
  const mod = (await import(pathToFileURL(spec.module).href)) as Record<string, unknown>;
  const target = mod[spec.export ?? 'default'];
  if (!isInterceptor(target))
    throw new Error(`${spec.module} does not export an Interceptor as '${spec.export ?? 'default'}'`);
  const server = await serve(target, {
    listen: spec.listen,
    handleSignals: true,
    shutdownGraceMs: 1000,
    logger: pino({ level: 'silent' }),
    ...(spec.auth
      ? {
          auth: {
            publicKey: spec.auth.publicKeyPem,
            ...(spec.auth.keyId ? { keyId: spec.auth.keyId } : {}),
            ...(spec.auth.audience ? { audience: spec.auth.audience } : {}),
            ...(spec.auth.gatewayId ? { gatewayId: spec.auth.gatewayId } : {}),
          },
        }
      : { insecure: true }),
  });
  process.stdout.write(`LISTENING ${server.address}\n`);
  await server.closed;
  process.exit(0);
} catch (e) {
  process.stdout.write(`ERROR ${(e as Error).message.replace(/\n/g, ' ')}\n`);
  process.exit(2);
}
