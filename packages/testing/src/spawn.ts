import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { isAbsolute, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface SpawnOptions {
  /** The export holding the Interceptor (default `default`). */
  readonly export?: string;
  /** `host:port` (default `127.0.0.1:0`) or `unix:///absolute/path`. */
  readonly listen?: string;
  /** Verify gateway tokens with this Ed25519 public key (SPKI PEM); default: insecure. */
  readonly auth?: {
    readonly publicKeyPem: string;
    readonly keyId?: string;
    readonly audience?: string;
    readonly gatewayId?: string;
  };
  /** Extra environment variables for the child. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long the child may take to listen (default 20 s). */
  readonly startTimeoutMs?: number;
}

/** An interceptor served by a separate process. */
export interface SpawnedInterceptor {
  /** `host:port` or `unix:///path`, as `serve` reports it. */
  readonly address: string;
  /** The address as a gateway `grpc_endpoint` (`http://host:port` or `unix:///path`). */
  readonly endpoint: string;
  readonly pid: number;
  /** Kill the process without warning (SIGKILL by default): an injected crash. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Ask it to shut down cleanly (SIGTERM) and wait. Idempotent; a no-op once it is gone. */
  close(): Promise<void>;
}

const HERE = fileURLToPath(import.meta.url);
const FROM_SOURCE = HERE.endsWith('.ts');

/**
 * Serve an interceptor module (default export) in a child process, so a test can crash it
 * for real (`kill()`) and watch the gateway's failure policy, breaker and reconnects.
 * TypeScript modules run through tsx (a dev dependency of the caller's workspace).
 */
export async function spawnInterceptor(
  modulePath: string,
  options: SpawnOptions = {},
): Promise<SpawnedInterceptor> {
  const module = isAbsolute(modulePath) ? modulePath : resolve(modulePath);
  const entry = resolve(HERE, '..', FROM_SOURCE ? 'serve-child.ts' : 'serve-child.js');
  const needsTsx = FROM_SOURCE || /\.[cm]?tsx?$/.test(module);
  const args = [...(needsTsx ? ['--conditions=source', '--import', 'tsx'] : []), entry];
  const child: ChildProcess = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      ...options.env,
      OPENSHELL_TEST_SERVE: JSON.stringify({
        module,
        export: options.export,
        listen: options.listen ?? '127.0.0.1:0',
        auth: options.auth,
      }),
    },
  });
  const exited = once(child, 'exit').then(() => undefined);
  const lines = createInterface({ input: child.stdout! });
  const address = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(
        new Error(
          `spawnInterceptor: ${module} did not start listening within ${options.startTimeoutMs ?? 20_000}ms`,
        ),
      );
    }, options.startTimeoutMs ?? 20_000);
    lines.on('line', (l) => {
      if (l.startsWith('LISTENING ')) {
        clearTimeout(timer);
        done(l.slice('LISTENING '.length).trim());
      } else if (l.startsWith('ERROR ')) {
        clearTimeout(timer);
        fail(new Error(`spawnInterceptor: ${l.slice('ERROR '.length)}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`spawnInterceptor: the child exited with code ${code} before listening`));
    });
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    address,
    endpoint: address.startsWith('unix://') ? address : `http://${address}`,
    pid: child.pid ?? -1,
    async kill(signal = 'SIGKILL') {
      if (gone()) return;
      child.kill(signal);
      await exited;
    },
    async close() {
      if (gone()) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
