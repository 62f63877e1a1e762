import type { Writable } from 'node:stream';

/** Exit codes shared by every command. */
export const EXIT = {
  /** Success: allowed, passed, served and shut down cleanly. */
  ok: 0,
  /** The operation ran and its answer is "no": denied, a check failed, a test failed. */
  failed: 1,
  /** Bad usage, bad configuration, or a startup refusal (reason on stderr). */
  usage: 2,
} as const;

export interface CommandContext {
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Usage text shown by `--help` and on usage errors. */
  readonly usage: string;
  run(argv: string[], ctx: CommandContext): Promise<number>;
}

/** Wrong flags or arguments: printed with the command's usage, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A refusal to start (bad config, unreachable service...): printed as is, exit 2. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}
