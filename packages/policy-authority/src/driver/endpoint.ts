import { isAbsolute } from 'node:path';

/** Where a driver listens or is dialled. */
export type DriverEndpoint =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly tls: boolean };

/** An endpoint string that cannot be used. */
export class EndpointError extends Error {
  readonly endpoint: string;
  constructor(endpoint: string, message: string) {
    super(`invalid driver endpoint '${endpoint}': ${message}`);
    this.name = 'EndpointError';
    this.endpoint = endpoint;
  }
}

/**
 * Parse `unix:///abs/path`, `host:port`, `http://host:port` (plaintext TCP) or
 * `https://host:port` (TLS). IPv6 hosts go in brackets: `[::1]:50051`.
 */
export function parseDriverEndpoint(endpoint: string): DriverEndpoint {
  const s = endpoint.trim();
  if (s.startsWith('unix://')) {
    const path = s.slice('unix://'.length);
    if (!path || !isAbsolute(path))
      throw new EndpointError(endpoint, 'unix:// needs an absolute path (unix:///run/x.sock)');
    return { kind: 'unix', path };
  }
  if (s.startsWith('unix:')) throw new EndpointError(endpoint, 'write unix sockets as unix:///absolute/path');
  let rest = s;
  let tls = false;
  if (s.startsWith('https://')) {
    tls = true;
    rest = s.slice('https://'.length);
  } else if (s.startsWith('http://')) {
    rest = s.slice('http://'.length);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    throw new EndpointError(endpoint, 'scheme must be unix://, http:// or https://');
  }
  rest = rest.replace(/\/$/, '');
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]\s]+):(\d{1,5})$/.exec(rest);
  if (!m) throw new EndpointError(endpoint, 'expected host:port');
  const port = Number(m[2]);
  if (port > 65535) throw new EndpointError(endpoint, `port ${port} is out of range`);
  return { kind: 'tcp', host: m[1]!, port, tls };
}

/** The gRPC target string for an endpoint. */
export function grpcTarget(ep: DriverEndpoint): string {
  return ep.kind === 'unix' ? `unix://${ep.path}` : `${ep.host}:${ep.port}`;
}

export function formatEndpoint(ep: DriverEndpoint): string {
  if (ep.kind === 'unix') return `unix://${ep.path}`;
  return `${ep.tls ? 'https://' : ''}${ep.host}:${ep.port}`;
}
