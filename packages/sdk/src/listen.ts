import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, isAbsolute, parse, resolve, sep } from 'node:path';

export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** Parse `host:port`, `[ipv6]:port` or `unix:///absolute/path`. */
export function parseListenAddress(listen: string): ListenAddress {
  if (listen.startsWith('unix:')) {
    if (!listen.startsWith('unix://'))
      throw new Error(`listen address ${JSON.stringify(listen)}: use unix:///absolute/path`);
    const path = listen.slice('unix://'.length);
    if (!isAbsolute(path)) {
      throw new Error(
        `listen address ${JSON.stringify(listen)}: the socket path must be absolute (unix:///path)`,
      );
    }
    return { kind: 'unix', path: resolve(path) };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(listen);
  if (!m)
    throw new Error(
      `listen address ${JSON.stringify(listen)}: expected host:port, [ipv6]:port or unix:///path`,
    );
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`listen address ${JSON.stringify(listen)}: port must be 0-65535`);
  return { kind: 'tcp', host: m[1] ?? m[2]!, port };
}

export function formatTcpAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** Whether something accepts connections on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      done(true);
    });
    s.once('error', () => done(false));
  });
}

/**
 * Make `path` ready to bind: no symlink anywhere in it; a leftover socket that
 * nobody answers on is removed; anything else already there is refused.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  const root = parse(path).root;
  let at = root;
  for (const part of dirname(path).slice(root.length).split(sep).filter(Boolean)) {
    at = at === root ? `${root}${part}` : `${at}${sep}${part}`;
    const st = await lstat(at).catch((err: unknown) => {
      throw new Error(`unix socket ${path}: cannot inspect ${at}: ${code(err) ?? String(err)}`);
    });
    if (st.isSymbolicLink())
      throw new Error(`unix socket ${path}: ${at} is a symbolic link; use the real path`);
    if (!st.isDirectory()) throw new Error(`unix socket ${path}: ${at} is not a directory`);
  }
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (err) {
    if (code(err) === 'ENOENT') return;
    throw new Error(`unix socket ${path}: cannot inspect it: ${code(err) ?? String(err)}`);
  }
  if (st.isSymbolicLink())
    throw new Error(`unix socket ${path}: the path is a symbolic link; refusing to follow it`);
  if (!st.isSocket())
    throw new Error(`unix socket ${path}: the path exists and is not a socket; refusing to remove it`);
  if (await answers(path)) throw new Error(`unix socket ${path}: another process is listening on it`);
  await unlink(path).catch((err: unknown) => {
    if (code(err) !== 'ENOENT')
      throw new Error(`unix socket ${path}: cannot remove the stale socket: ${code(err)}`);
  });
}

/** Remove our socket file on shutdown (only if it is still a socket). */
export async function removeSocket(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSocket()) await unlink(path);
  } catch {
    // already gone
  }
}
