// Entry point of a fixture interceptor run as a separate process:
//   FIXTURE_SCRIPT='<ScriptSpec JSON>' [FIXTURE_UNIX=/abs/path.sock] node --conditions=source --import tsx child-server.ts
// Prints `READY <endpoint>` on stdout once it listens; exits on SIGTERM.
import { type ScriptSpec, startInterceptorServer } from './interceptor-server.js';

const script = JSON.parse(process.env.FIXTURE_SCRIPT ?? '{}') as ScriptSpec;
const unixPath = process.env.FIXTURE_UNIX;
const fixture = await startInterceptorServer(script, unixPath ? { unixPath } : {});
process.stdout.write(`READY ${fixture.endpoint}\n`);
process.on('SIGTERM', () => {
  fixture.close().then(() => process.exit(0));
});
