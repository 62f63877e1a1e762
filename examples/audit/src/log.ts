import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { type FileHandle, open, rename, stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/** Where audit lines go. Lines end with '\n'. */
export interface AuditSink {
  /** Write a batch durably (as far as the sink can). */
  write(lines: string): Promise<void>;
  /** Last-chance synchronous write at process exit. */
  writeSync?(lines: string): void;
  close(): Promise<void>;
}

export interface FileSinkOptions {
  /** Rotate before a write would take the file past this many bytes (default 10 MiB). */
  readonly maxBytes?: number;
  /** Rotated files kept: `audit.log.1` (newest) … `audit.log.<maxFiles>` (default 5). */
  readonly maxFiles?: number;
  /** fsync after every batch (default true): a committed operation's line survives a crash. */
  readonly fsync?: boolean;
}

/**
 * An append-only JSON-lines file with size-based rotation: when a batch would take the
 * file past `maxBytes`, `audit.log` becomes `audit.log.1` (older ones shift up, the
 * oldest beyond `maxFiles` is dropped) and a fresh file is started. Mode 0600.
 */
export class FileSink implements AuditSink {
  private handle: FileHandle | undefined;
  private size = 0;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly fsync: boolean;

  constructor(
    readonly path: string,
    options: FileSinkOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 10 * 1024 * 1024;
    this.maxFiles = options.maxFiles ?? 5;
    this.fsync = options.fsync ?? true;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1)
      throw new RangeError(`audit: maxBytes must be a positive integer, got ${this.maxBytes}`);
    if (!Number.isInteger(this.maxFiles) || this.maxFiles < 1)
      throw new RangeError(`audit: maxFiles must be an integer >= 1, got ${this.maxFiles}`);
  }

  private async file(): Promise<FileHandle> {
    if (!this.handle) {
      this.handle = await open(this.path, 'a', 0o600);
      this.size = (await stat(this.path)).size;
    }
    return this.handle;
  }

  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(ignoreMissing);
    }
    await rename(this.path, `${this.path}.1`).catch(ignoreMissing);
  }

  async write(lines: string): Promise<void> {
    const buf = Buffer.from(lines);
    let fh = await this.file();
    if (this.size > 0 && this.size + buf.length > this.maxBytes) {
      await this.rotate();
      fh = await this.file();
    }
    let off = 0;
    while (off < buf.length) off += (await fh.write(buf, off)).bytesWritten;
    this.size += buf.length;
    if (this.fsync) await fh.sync();
  }

  writeSync(lines: string): void {
    // At exit the async handle may be mid-write; a separate descriptor appends safely.
    const fd = openSync(this.path, 'a', 0o600);
    try {
      writeSync(fd, lines);
      if (this.fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

/** Lines to a stream such as stdout (for a log collector that tails the container). */
export class StreamSink implements AuditSink {
  constructor(
    private readonly stream: Writable,
    private readonly fd?: number,
  ) {}

  write(lines: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stream.write(lines, (err) => (err ? reject(err) : resolve()));
    });
  }

  writeSync(lines: string): void {
    if (this.fd !== undefined) writeSync(this.fd, lines);
  }

  async close(): Promise<void> {}
}

export interface AuditLogOptions {
  /** Records waiting for the sink; when full, new records are dropped and counted (default 10000). */
  readonly maxQueue?: number;
  /** Called on the first drop after a successful write, and on sink errors (rate-limited by the caller). */
  readonly onProblem?: (problem: {
    kind: 'dropped' | 'write-failed';
    count: number;
    error?: unknown;
  }) => void;
  /** Write what is still queued synchronously when the process exits (default true). */
  readonly flushOnExit?: boolean;
}

export interface AuditLogStats {
  /** Lines the sink accepted. */
  readonly written: number;
  /** Records refused because the queue was full. */
  readonly dropped: number;
  /** Lines lost because the sink failed. */
  readonly failed: number;
  /** Lines waiting now. */
  readonly queued: number;
}

/**
 * A bounded queue in front of a sink. `append` never waits: it queues the line or,
 * when `maxQueue` lines are already waiting, drops it and counts the drop. One
 * writer drains the queue in batches, so the interceptor answers the gateway at
 * once whatever the disk does.
 */
export class AuditLog {
  private queue: string[] = [];
  private draining: Promise<void> | undefined;
  private written = 0;
  private dropped = 0;
  private failed = 0;
  private droppedSinceWrite = 0;
  private closed = false;
  private readonly maxQueue: number;
  private readonly onExit = () => this.flushSync();

  constructor(
    readonly sink: AuditSink,
    private readonly options: AuditLogOptions = {},
  ) {
    this.maxQueue = options.maxQueue ?? 10_000;
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 1)
      throw new RangeError(`audit: maxQueue must be a positive integer, got ${this.maxQueue}`);
    if (options.flushOnExit ?? true) process.once('exit', this.onExit);
  }

  /** Queue one line (without its newline); false when it was dropped. */
  append(line: string): boolean {
    if (this.closed || this.queue.length >= this.maxQueue) {
      this.dropped++;
      if (this.droppedSinceWrite++ === 0) this.options.onProblem?.({ kind: 'dropped', count: this.dropped });
      return false;
    }
    this.queue.push(line);
    this.draining ??= this.drain();
    return true;
  }

  private async drain(): Promise<void> {
    // Let the handler return first; the batch then takes everything queued meanwhile.
    await new Promise<void>((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.sink.write(`${batch.join('\n')}\n`);
        this.written += batch.length;
        this.droppedSinceWrite = 0;
      } catch (error) {
        this.failed += batch.length;
        this.options.onProblem?.({ kind: 'write-failed', count: batch.length, error });
      }
    }
    this.draining = undefined;
  }

  stats(): AuditLogStats {
    return { written: this.written, dropped: this.dropped, failed: this.failed, queued: this.queue.length };
  }

  /** Resolve once everything queued so far is written. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Flush, then close the sink; later appends are dropped. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    process.removeListener('exit', this.onExit);
    await this.sink.close();
  }

  private flushSync(): void {
    if (this.queue.length === 0 || !this.sink.writeSync) return;
    const batch = this.queue;
    this.queue = [];
    try {
      this.sink.writeSync(`${batch.join('\n')}\n`);
      this.written += batch.length;
    } catch {
      this.failed += batch.length;
    }
  }
}
