#!/usr/bin/env node
// Run the signed-bundle driver:
//   node dist/main.js --listen unix:///run/policy/driver.sock --bundles ./bundles --state ./state [--trust ./trust]
import { parseArgs } from 'node:util';
import { servePolicyDriver, TrustStore } from '@openshell-interceptors/policy-authority';
import { pino } from 'pino';
import { openSignedBundleDriver } from './driver.js';

const USAGE =
  'usage: openshell-signed-bundle-driver --listen unix:///path.sock|host:port --bundles DIR --state DIR\n' +
  '       [--trust DIR|JWKS] [--permits-mutation] [--debounce-ms N]';

async function main(): Promise<number> {
  let values: {
    listen?: string;
    bundles?: string;
    state?: string;
    trust?: string;
    'permits-mutation'?: boolean;
    'debounce-ms'?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      options: {
        listen: { type: 'string' },
        bundles: { type: 'string' },
        state: { type: 'string' },
        trust: { type: 'string' },
        'permits-mutation': { type: 'boolean' },
        'debounce-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  for (const flag of ['listen', 'bundles', 'state'] as const) {
    if (!values[flag]) {
      process.stderr.write(`--${flag} is required\n${USAGE}\n`);
      return 2;
    }
  }
  const debounceMs = values['debounce-ms'] === undefined ? 200 : Number(values['debounce-ms']);
  if (!Number.isInteger(debounceMs) || debounceMs < 0) {
    process.stderr.write(`--debounce-ms must be a non-negative integer\n${USAGE}\n`);
    return 2;
  }
  const logger = pino({ name: 'signed-bundle-driver' });
  // Installed before listening so a signal right after start-up still shuts down cleanly.
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  let opened: Awaited<ReturnType<typeof openSignedBundleDriver>>;
  let server: Awaited<ReturnType<typeof servePolicyDriver>>;
  try {
    const trust = values.trust ? await TrustStore.load(values.trust) : undefined;
    opened = await openSignedBundleDriver({
      bundlesDir: values.bundles!,
      stateDir: values.state!,
      ...(trust ? { trust } : {}),
      permitsMutation: values['permits-mutation'] === true,
      debounceMs,
      logger,
    });
    server = await servePolicyDriver(opened.driver, { listen: values.listen!, logger });
  } catch (err) {
    process.stderr.write(`signed-bundle driver: cannot start: ${(err as Error).message}\n`);
    return 2;
  }
  const onHup = () => void opened.reload();
  process.on('SIGHUP', onHup);
  await stop;
  process.off('SIGHUP', onHup);
  opened.close();
  await server.close();
  logger.info('stopped');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `signed-bundle driver: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 70;
  },
);
