import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type RuntimeContext, writeFileAtomic } from '@openshell-interceptors/policy-authority';
import type { Logger } from 'pino';

/** A handle as persisted: one JSON file per handle, `<state>/<handle>.json`. */
export interface StoredHandle {
  readonly handle: string;
  readonly context: RuntimeContext;
  /** ISO timestamp. */
  readonly acquiredAt: string;
}

// Handles double as file names, so a handle from the wire is only ever used as a
// path after it matched this exact shape ("../x" can never match).
const HANDLE = /^h_[A-Za-z0-9_-]{22}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseStored(text: string, expected: string): StoredHandle {
  const doc: unknown = JSON.parse(text);
  if (!isRecord(doc) || doc.version !== 1) throw new Error('not a version 1 handle record');
  if (doc.handle !== expected)
    throw new Error(`records handle ${String(doc.handle)}, file is named for ${expected}`);
  const ctx = doc.context;
  if (!isRecord(ctx) || typeof ctx.sandbox_id !== 'string' || typeof ctx.user_subject !== 'string') {
    throw new Error('context is missing sandbox_id or user_subject');
  }
  const attrs = isRecord(ctx.attributes) ? ctx.attributes : {};
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (typeof v === 'string') attributes[k] = v;
  return {
    handle: expected,
    context: { sandboxId: ctx.sandbox_id, userSubject: ctx.user_subject, attributes },
    acquiredAt: typeof doc.acquired_at === 'string' ? doc.acquired_at : '',
  };
}

/**
 * Driver handles that survive a crash. Each acquire writes its record with an
 * atomic write (temporary file, fsync, rename, fsync of the directory) before
 * the handle is returned, so a handle a caller holds is always on disk; each
 * release unlinks the record and fsyncs the directory before answering.
 */
export class HandleStore {
  readonly dir: string;
  private readonly handles: Map<string, StoredHandle>;
  private readonly log: Logger;

  private constructor(dir: string, handles: Map<string, StoredHandle>, log: Logger) {
    this.dir = dir;
    this.handles = handles;
    this.log = log;
  }

  /** Open (creating it 0700 if needed) and load every handle record; leftover temporary files are removed. */
  static async open(dir: string, log: Logger): Promise<HandleStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handles = new Map<string, StoredHandle>();
    for (const name of await readdir(dir)) {
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        // A write that crashed before its rename: the handle was never handed out.
        await unlink(join(dir, name)).catch(() => undefined);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const handle = name.slice(0, -'.json'.length);
      if (!HANDLE.test(handle)) continue;
      try {
        handles.set(handle, parseStored(await readFile(join(dir, name), 'utf8'), handle));
      } catch (err) {
        log.error({ file: join(dir, name), err: (err as Error).message }, 'unreadable handle record skipped');
      }
    }
    log.info({ dir, handles: handles.size }, 'handle store opened');
    return new HandleStore(dir, handles, log);
  }

  get size(): number {
    return this.handles.size;
  }

  get(handle: string): StoredHandle | undefined {
    return HANDLE.test(handle) ? this.handles.get(handle) : undefined;
  }

  async acquire(context: RuntimeContext): Promise<string> {
    const handle = `h_${randomBytes(16).toString('base64url')}`;
    const record: StoredHandle = {
      handle,
      context: {
        sandboxId: context.sandboxId,
        userSubject: context.userSubject,
        attributes: { ...context.attributes },
      },
      acquiredAt: new Date().toISOString(),
    };
    const doc = {
      version: 1,
      handle,
      context: {
        sandbox_id: record.context.sandboxId,
        user_subject: record.context.userSubject,
        attributes: record.context.attributes,
      },
      acquired_at: record.acquiredAt,
    };
    await writeFileAtomic(join(this.dir, `${handle}.json`), `${JSON.stringify(doc)}\n`, 0o600);
    this.handles.set(handle, record);
    return handle;
  }

  /** True when the handle was held; false when unknown or already released. */
  async release(handle: string): Promise<boolean> {
    const record = this.get(handle);
    if (!record) return false;
    // Out of the map first, so a concurrent release of the same handle answers false.
    this.handles.delete(handle);
    try {
      await unlink(join(this.dir, `${handle}.json`));
      const d = await open(this.dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.handles.set(handle, record);
        this.log.error({ handle, err: (err as Error).message }, 'handle release could not be persisted');
        throw err;
      }
    }
    return true;
  }
}
