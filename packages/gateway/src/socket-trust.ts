import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { dirname, sep } from 'node:path';

/** The Unix socket trust checks of CONTRACT section 7 (ours); `check` names the one that failed. */
export type SocketCheck =
  | 'absolute'
  | 'exists'
  | 'symlink'
  | 'socket'
  | 'owner'
  | 'socket-mode'
  | 'directory-mode';

export class SocketTrustError extends Error {
  constructor(
    readonly check: SocketCheck,
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'SocketTrustError';
  }
}

export interface SocketTrustOptions {
  /** The uid the socket must be owned by; default this process's uid, or root. */
  readonly expectedUid?: number;
}

/**
 * Check a unix socket path before dialing it: a filesystem socket (never an abstract
 * name), no symlink in any component, owned by the expected uid (default: ours or root),
 * not writable by others, in a directory that is not group/world-writable.
 */
export async function checkUnixSocket(path: string, opts: SocketTrustOptions = {}): Promise<void> {
  if (!path.startsWith('/') || path.startsWith('@') || path.includes('\0'))
    throw new SocketTrustError(
      'absolute',
      path,
      `unix socket ${path}: only absolute filesystem paths are allowed`,
    );
  const parts = path.split(sep).filter((p) => p !== '');
  let prefix = '';
  let last: Stats | undefined;
  for (const part of parts) {
    prefix += `/${part}`;
    try {
      last = await lstat(prefix);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SocketTrustError(
        'exists',
        path,
        code === 'ENOENT'
          ? `unix socket ${path}: ${prefix} does not exist`
          : `unix socket ${path}: cannot inspect ${prefix}: ${code ?? (e as Error).message}`,
      );
    }
    if (last.isSymbolicLink())
      throw new SocketTrustError(
        'symlink',
        path,
        `unix socket ${path}: path component ${prefix} is a symlink`,
      );
  }
  if (!last?.isSocket()) throw new SocketTrustError('socket', path, `unix socket ${path}: not a socket`);
  const self = process.getuid?.();
  const allowed = opts.expectedUid !== undefined ? [opts.expectedUid] : [self ?? 0, 0];
  if (!allowed.includes(last.uid)) {
    throw new SocketTrustError(
      'owner',
      path,
      `unix socket ${path}: owned by uid ${last.uid}, expected uid ${[...new Set(allowed)].join(' or ')}`,
    );
  }
  if ((last.mode & 0o002) !== 0)
    throw new SocketTrustError(
      'socket-mode',
      path,
      `unix socket ${path}: writable by others (mode ${modeOf(last.mode)})`,
    );
  const dir = dirname(path);
  const d = await lstat(dir);
  if ((d.mode & 0o022) !== 0) {
    throw new SocketTrustError(
      'directory-mode',
      path,
      `unix socket ${path}: directory ${dir} is group- or world-writable (mode ${modeOf(d.mode)})`,
    );
  }
}

function modeOf(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}
