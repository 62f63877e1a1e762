#!/usr/bin/env node
// Run the null driver: node dist/main.js --listen unix:///run/policy/null.sock [--permits-mutation]
import { parseArgs } from 'node:util';
import { servePolicyDriver } from '@openshell-interceptors/policy-authority';
import { createNullDriver } from './index.js';

const USAGE = 'usage: openshell-null-driver --listen unix:///path.sock|host:port [--permits-mutation]';

async function main(): Promise<number> {
  let values: { listen?: string; 'permits-mutation'?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        listen: { type: 'string' },
        'permits-mutation': { type: 'boolean' },
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
  if (!values.listen) {
    process.stderr.write(`--listen is required\n${USAGE}\n`);
    return 2;
  }
  // Installed before listening so a signal right after start-up still shuts down cleanly.
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  let server: Awaited<ReturnType<typeof servePolicyDriver>>;
  try {
    server = await servePolicyDriver(
      createNullDriver({ permitsMutation: values['permits-mutation'] === true }),
      {
        listen: values.listen,
      },
    );
  } catch (err) {
    process.stderr.write(`null driver: cannot start: ${(err as Error).message}\n`);
    return 2;
  }
  await stop;
  await server.close();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`null driver: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
