import { Writable } from 'node:stream';
import pino from 'pino';

/** One structured log line of the runtime (pino JSON: level, msg and the event's fields). */
export type LogLine = Readonly<Record<string, unknown>> & { readonly level: number; readonly msg: string };

/** A pino logger that keeps every line in memory, parsed. */
export function memoryLogger(level: pino.LevelWithSilent = 'debug'): {
  logger: pino.Logger;
  lines: LogLine[];
} {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) {
        if (l.trim() === '') continue;
        try {
          lines.push(JSON.parse(l) as LogLine);
        } catch {
          lines.push({ level: 30, msg: l });
        }
      }
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** A logger that drops everything. */
export function silentLogger(): pino.Logger {
  return pino({ level: 'silent' });
}
