import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../files.js';

/** Which driver handle a committed sandbox holds, as the enforcing side remembers it. */
export interface JournalEntry {
  /** `<workspace>/<name>`. */
  readonly key: string;
  readonly workspace: string;
  readonly name: string;
  readonly handle: string;
  readonly policyDigest: string;
  readonly recordedAt: string;
  /** Deleted, but the driver has not confirmed the release yet (retried). */
  readonly releasing?: boolean;
}

export function sandboxKey(workspace: string, name: string): string {
  return `${workspace}/${name}`;
}

function fileFor(dir: string, key: string): string {
  return join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.json`);
}

function isEntry(v: unknown): v is JournalEntry {
  const e = v as Partial<JournalEntry> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.key === 'string' &&
    typeof e.workspace === 'string' &&
    typeof e.name === 'string' &&
    typeof e.handle === 'string' &&
    e.handle !== '' &&
    typeof e.policyDigest === 'string'
  );
}

/**
 * The enforcing side's record of sandbox → handle, so a DeleteSandbox can release
 * the right handle even after this process restarted. With a directory every
 * change is an atomic file write (or an unlink plus directory fsync); without one
 * it lives in memory only.
 */
export class HandleJournal {
  private readonly entries: Map<string, JournalEntry>;
  private readonly dir: string | undefined;
  private readonly log: Logger;

  private constructor(dir: string | undefined, entries: Map<string, JournalEntry>, log: Logger) {
    this.dir = dir;
    this.entries = entries;
    this.log = log;
  }

  static async open(dir: string | undefined, log: Logger): Promise<HandleJournal> {
    const entries = new Map<string, JournalEntry>();
    if (dir !== undefined) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      for (const name of await readdir(dir)) {
        const file = join(dir, name);
        if (name.startsWith('.') && name.endsWith('.tmp')) {
          await unlink(file).catch(() => undefined);
          continue;
        }
        if (!name.endsWith('.json')) continue;
        try {
          const e: unknown = JSON.parse(await readFile(file, 'utf8'));
          if (!isEntry(e) || fileFor(dir, e.key) !== file) throw new Error('not a journal entry');
          entries.set(e.key, e);
        } catch (err) {
          log.error({ file, err: (err as Error).message }, 'unreadable handle journal entry skipped');
        }
      }
    }
    return new HandleJournal(dir, entries, log);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): JournalEntry | undefined {
    return this.entries.get(key);
  }

  all(): JournalEntry[] {
    return [...this.entries.values()];
  }

  async put(entry: JournalEntry): Promise<void> {
    if (this.dir !== undefined) {
      await writeFileAtomic(fileFor(this.dir, entry.key), `${JSON.stringify(entry)}\n`, 0o600);
    }
    this.entries.set(entry.key, entry);
  }

  async remove(key: string): Promise<void> {
    if (!this.entries.has(key)) return;
    if (this.dir !== undefined) {
      try {
        await unlink(fileFor(this.dir, key));
        const d = await open(this.dir, 'r');
        try {
          await d.sync();
        } finally {
          await d.close();
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.log.error({ key, err: (err as Error).message }, 'handle journal entry could not be removed');
          throw err;
        }
      }
    }
    this.entries.delete(key);
  }
}
