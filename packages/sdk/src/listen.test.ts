import { describe, expect, it } from 'vitest';
import { formatTcpAddress, parseListenAddress } from './listen.js';

describe('listen addresses', () => {
  it('parses host:port, [ipv6]:port and unix:///path', () => {
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('localhost:50051')).toEqual({ kind: 'tcp', host: 'localhost', port: 50051 });
    expect(parseListenAddress('[::1]:8080')).toEqual({ kind: 'tcp', host: '::1', port: 8080 });
    expect(parseListenAddress('unix:///run/x.sock')).toEqual({ kind: 'unix', path: '/run/x.sock' });
    expect(formatTcpAddress('::1', 5)).toBe('[::1]:5');
  });

  it('refuses anything else, quoting the address', () => {
    for (const bad of [
      '50051',
      'host:',
      ':80',
      'host:70000',
      'unix:sock',
      'unix://rel/x.sock',
      'a b:1',
      '::1:80',
    ]) {
      expect(() => parseListenAddress(bad), bad).toThrow(/listen address/);
    }
  });
});
