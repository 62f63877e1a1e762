import { type DestinationStream, type Logger, pino } from 'pino';

/** Under vitest or NODE_ENV=test: strict contract checks and quieter default logs. */
export function isTestEnvironment(): boolean {
  return Boolean(process.env.VITEST) || process.env.NODE_ENV === 'test';
}

let stderr: DestinationStream | undefined;

/** The logger used when the author passes none: JSON lines on stderr (stdout stays for program output). */
export function defaultLogger(name: string): Logger {
  stderr ??= pino.destination({ fd: 2, sync: true });
  const level = process.env.LOG_LEVEL ?? (isTestEnvironment() ? 'error' : 'info');
  return pino({ name, level }, stderr);
}
