import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

/** How to run `openshell-interceptors` as a child process: node, its flags, and the bin script. */
export interface CliLauncher {
  readonly execPath: string;
  /** Arguments before the command name, e.g. `['--conditions=source', '--import', 'tsx', '/…/bin.ts']`. */
  readonly args: readonly string[];
  /** Working directory (where `tsx` resolves from when running from sources). */
  readonly cwd?: string;
}

export interface ServiceSpec {
  readonly name: string;
  /** The package directory served (`openshell-interceptors serve <dir>`). */
  readonly dir: string;
  /** `127.0.0.1:0` or `unix:///abs/path`. */
  readonly listen: string;
  readonly env: Readonly<Record<string, string>>;
  readonly publicKeyFile: string;
  readonly gatewayId: string;
}

export interface RunningService {
  readonly name: string;
  /** What `serve` printed: `127.0.0.1:43121` or `unix:///…/quota.sock`. */
  readonly address: string;
  /** The `grpc_endpoint` for the gateway config. */
  readonly endpoint: string;
  readonly pid: number;
  /** Whether the process is still running. */
  running(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>;
  /** The end of what it wrote on stderr (for error reports). */
  stderrTail(): string;
}

const TAIL = 4000;

/** Start `openshell-interceptors serve` for one sample and resolve once it listens. */
export function startService(
  spec: ServiceSpec,
  launcher: CliLauncher,
  timeoutMs = 60_000,
): Promise<RunningService> {
  const args = [
    ...launcher.args,
    'serve',
    spec.dir,
    '--listen',
    spec.listen,
    '--public-key',
    spec.publicKeyFile,
    '--gateway-id',
    spec.gatewayId,
    '--grace-ms',
    '2000',
  ];
  const child: ChildProcess = spawn(launcher.execPath, args, {
    cwd: launcher.cwd ?? process.cwd(),
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-TAIL);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = async (graceMs = 5000): Promise<number | null> => {
    if (running()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return exited;
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop(0);
      reject(
        new Error(`${spec.name} did not start within ${timeoutMs} ms: ${stderr.trim() || '(no output)'}`),
      );
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${spec.name} could not be started: ${err.message}`));
    });
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /listening on (\S+)/.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      child.stdout?.removeAllListeners('data');
      child.stdout?.resume();
      const address = m[1]!;
      resolve({
        name: spec.name,
        address,
        endpoint: address.startsWith('unix://') ? address : `http://${address}`,
        pid: child.pid ?? -1,
        running,
        stop,
        stderrTail: () => stderr,
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(
          `${spec.name} exited with code ${code} before listening: ${stderr.trim() || '(no output)'}`,
        ),
      );
    });
  });
}

/** The directory of a sample package next to the demo: `examples/<name>`. */
export function sampleDir(examplesDir: string, name: string): string {
  return join(examplesDir, name);
}
