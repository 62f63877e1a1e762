// A CLI command running as a real process (from the TypeScript sources), for the
// long-running commands: `serve` and `policy serve`.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/src/bin.ts');

export class CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  /**
   * `args` from the command on, e.g. `['serve', 'examples/naming', '--listen', …]`. It runs in
   * the repository root (where `tsx` resolves): give other files as absolute paths.
   */
  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, VITEST: '', NODE_ENV: 'production', LOG_LEVEL: 'info' },
    });
    this.child.stdout.on('data', (d: Buffer) => {
      this.stdout += d.toString();
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the address from the 'listening on' line. */
  listening(): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = /^listening on (\S+)$/m.exec(this.stdout);
        if (m) {
          this.child.stdout.off('data', check);
          resolve(m[1]!);
        }
      };
      this.child.stdout.on('data', check);
      check();
      void this.exited.then((code) =>
        reject(new Error(`the command exited with ${code} before listening:\n${this.stderr}`)),
      );
    });
  }
}
