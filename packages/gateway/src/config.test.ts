import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULTS,
  GatewayConfigError,
  gatewayConfigFromObject,
  loadGatewayConfig,
  parseDuration,
  parseGatewayConfig,
} from './config.js';

function one(body: string, gateway = '') {
  return parseGatewayConfig(`[openshell.gateway]\n${gateway}\n[[openshell.gateway.interceptors]]\n${body}`, {
    source: 'gw.toml',
    baseDir: '/etc/openshell',
  });
}

function refused(body: string, gateway = ''): string {
  try {
    one(body, gateway);
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayConfigError);
    return (e as Error).message;
  }
  throw new Error('config was accepted');
}

const BASE = 'name = "quota"\ngrpc_endpoint = "http://127.0.0.1:50051"\n';

describe('parseGatewayConfig', () => {
  it('applies the documented defaults', () => {
    const cfg = one(BASE);
    expect(cfg.gatewayId).toBe('openshell');
    expect(cfg.issuer).toBe('openshell-gateway:openshell');
    expect(cfg.jwt).toBeUndefined();
    const ic = cfg.interceptors[0];
    expect(ic).toMatchObject({
      name: 'quota',
      endpoint: { kind: 'http', target: '127.0.0.1:50051' },
      audience: 'urn:openshell:extension:interceptor:quota',
      allowInsecureTransport: false,
      order: 0,
      timeoutMs: 500,
      maxResponseBytes: 1048576,
      maxPatches: 32,
      bindingPolicy: 'dynamic',
      bindings: [],
      maxConcurrency: DEFAULTS.maxConcurrency,
      maxQueue: DEFAULTS.maxQueue,
      breaker: DEFAULTS.breaker,
    });
    expect(ic?.failurePolicy).toBeUndefined();
  });

  it('reads every key, resolving relative paths against the config directory', () => {
    const cfg = one(
      `name = "a"
grpc_endpoint = "https://policy.internal:8443"
tls_ca_cert_path = "certs/ca.pem"
audience = "urn:example:a"
order = -3
failure_policy = "fail_open"
timeout = "2s"
max_response_bytes = 4096
max_patches = 0
binding_policy = "allowlist"
max_concurrency = 4
max_queue = 0
describe_attempts = 2
describe_backoff = "50ms"
breaker = { enabled = false, error_threshold_percentage = 25, volume_threshold = 3, reset_timeout = "1s", rolling_window = "2s" }
bindings = [{ id = "b1", rpc = "openshell.v1.OpenShell/CreateSandbox", phases = ["validate"], failure_policy = "fail_closed" }]
`,
      'gateway_id = "gw-7"\njwt_private_key_path = "keys/gw.pem"\njwt_key_id = "k1"\njwt_ttl = "600s"\nprovider_profile_sources = [{ type = "builtin" }, { type = "interceptor", name = "a" }]',
    );
    expect(cfg.issuer).toBe('openshell-gateway:gw-7');
    expect(cfg.jwt).toEqual({ privateKeyPath: '/etc/openshell/keys/gw.pem', keyId: 'k1', ttlSeconds: 600 });
    expect(cfg.providerProfileSources).toEqual([{ type: 'builtin' }, { type: 'interceptor', name: 'a' }]);
    expect(cfg.interceptors[0]).toMatchObject({
      endpoint: { kind: 'https', target: 'policy.internal:8443' },
      tlsCaCertPath: '/etc/openshell/certs/ca.pem',
      audience: 'urn:example:a',
      order: -3,
      failurePolicy: 'fail_open',
      timeoutMs: 2000,
      maxResponseBytes: 4096,
      maxPatches: 0,
      bindingPolicy: 'allowlist',
      maxConcurrency: 4,
      maxQueue: 0,
      describeAttempts: 2,
      describeBackoffMs: 50,
      breaker: {
        enabled: false,
        errorThresholdPercentage: 25,
        volumeThreshold: 3,
        resetTimeoutMs: 1000,
        rollingWindowMs: 2000,
      },
      bindings: [
        {
          id: 'b1',
          selector: { service: 'openshell.v1.OpenShell', method: 'CreateSandbox' },
          phases: ['validate'],
          disabled: false,
          failurePolicy: 'fail_closed',
          index: 0,
        },
      ],
    });
  });

  it('accepts unix sockets with absolute paths and refuses abstract or relative ones', () => {
    const cfg = one('name = "u"\ngrpc_endpoint = "unix:///run/ext/u.sock"\nunix_socket_uid = 1000');
    expect(cfg.interceptors[0]?.endpoint).toEqual({
      kind: 'unix',
      path: '/run/ext/u.sock',
      target: 'unix:///run/ext/u.sock',
    });
    expect(cfg.interceptors[0]?.unixSocketUid).toBe(1000);
    expect(refused('name = "u"\ngrpc_endpoint = "unix://@abstract"')).toMatch(/abstract unix socket names/);
    expect(refused('name = "u"\ngrpc_endpoint = "unix://run/u.sock"')).toMatch(/absolute path/);
  });

  it.each([
    ['missing name', 'grpc_endpoint = "http://x:1"', /#1: key 'name' = \(missing\): required/],
    ['blank name', 'name = " "\ngrpc_endpoint = "http://x:1"', /key 'name' = " ": required/],
    ['missing endpoint', 'name = "a"', /interceptor 'a': key 'grpc_endpoint' = \(missing\)/],
    [
      'grpc:// scheme',
      'name = "a"\ngrpc_endpoint = "grpc://x:1"',
      /key 'grpc_endpoint' = "grpc:\/\/x:1": expected http/,
    ],
    ['endpoint with path', 'name = "a"\ngrpc_endpoint = "http://x:1/v1"', /no path/],
    [
      'ca on http',
      `${BASE}tls_ca_cert_path = "ca.pem"`,
      /key 'tls_ca_cert_path' = "ca.pem": only valid with an https/,
    ],
    ['audience with space', `${BASE}audience = "a b"`, /key 'audience' = "a b": must not contain whitespace/],
    ['audience with control char', `${BASE}audience = "a\\u0007b"`, /must not contain whitespace or control/],
    ['audience = issuer', `${BASE}audience = "openshell-gateway:openshell"`, /gateway's own issuer/],
    [
      'bad failure_policy',
      `${BASE}failure_policy = "fail_maybe"`,
      /key 'failure_policy' = "fail_maybe": expected "fail_closed" or "fail_open"/,
    ],
    [
      'timeout in minutes',
      `${BASE}timeout = "1m"`,
      /key 'timeout' = "1m": expected "<integer>ms" or "<integer>s", nothing else/,
    ],
    ['fractional timeout', `${BASE}timeout = "1.5s"`, /key 'timeout' = "1.5s"/],
    ['numeric timeout', `${BASE}timeout = 500`, /key 'timeout' = 500: expected a string/],
    ['zero timeout', `${BASE}timeout = "0ms"`, /must be at least 1ms/],
    ['string max_patches', `${BASE}max_patches = "3"`, /key 'max_patches' = "3": expected an integer/],
    ['negative max_response_bytes', `${BASE}max_response_bytes = -1`, /key 'max_response_bytes' = -1/],
    ['unknown key', `${BASE}retries = 3`, /interceptor 'quota': key 'retries' = 3: unknown key/],
    ['unknown binding policy', `${BASE}binding_policy = "loose"`, /key 'binding_policy' = "loose"/],
    [
      'bad rpc selector',
      `${BASE}bindings = [{ id = "x", rpc = "CreateSandbox" }]`,
      /bindings\[0\]: key 'rpc' = "CreateSandbox": expected "service\/method"/,
    ],
    [
      'empty method',
      `${BASE}bindings = [{ id = "x", rpc = "openshell.v1.OpenShell/" }]`,
      /expected "service\/method"/,
    ],
    [
      'non-interceptable rpc',
      `${BASE}bindings = [{ rpc = "openshell.v1.OpenShell/GetSandbox" }]`,
      /not one of the 25 interceptable/,
    ],
    [
      'rpc and service both',
      `${BASE}bindings = [{ rpc = "openshell.v1.OpenShell/CreateSandbox", service = "openshell.v1.OpenShell" }]`,
      /not both/,
    ],
    [
      'unknown phase',
      `${BASE}bindings = [{ id = "x", phases = ["pre_commit"] }]`,
      /unknown phase "pre_commit"/,
    ],
    [
      'unknown binding key',
      `${BASE}bindings = [{ id = "x", priority = 1 }]`,
      /bindings\[0\]: key 'priority' = 1: unknown key/,
    ],
    [
      'duplicate binding id',
      `${BASE}bindings = [{ id = "x" }, { id = "x" }]`,
      /binding id "x" configured twice/,
    ],
    [
      'dynamic entry with nothing to match',
      `${BASE}bindings = [{ disabled = true }]`,
      /needs an id or a selector/,
    ],
    [
      'allowlist entry without phases',
      `${BASE}binding_policy = "allowlist"\nbindings = [{ rpc = "openshell.v1.OpenShell/CreateSandbox" }]`,
      /needs phases/,
    ],
    [
      'exact entry without selector',
      `${BASE}binding_policy = "exact"\nbindings = [{ id = "x", phases = ["validate"] }]`,
      /needs a selector/,
    ],
    [
      'unknown breaker key',
      `${BASE}breaker = { threshold = 3 }`,
      /breaker: key 'threshold' = 3: unknown key/,
    ],
    [
      'breaker threshold out of range',
      `${BASE}breaker = { error_threshold_percentage = 101 }`,
      /must be in 1..100/,
    ],
    ['unix_socket_uid on tcp', `${BASE}unix_socket_uid = 0`, /only valid with a unix/],
  ])('refuses %s, naming the interceptor, key and value', (_label, body, message) => {
    expect(refused(body)).toMatch(message);
  });

  it('names the file in every error', () => {
    expect(refused(`${BASE}timeout = "1m"`)).toMatch(/^gw\.toml: interceptor 'quota': key 'timeout'/);
  });

  it('refuses duplicate interceptor names', () => {
    expect(() =>
      parseGatewayConfig(
        `[[openshell.gateway.interceptors]]\n${BASE}\n[[openshell.gateway.interceptors]]\n${BASE.replace('50051', '50052')}`,
      ),
    ).toThrow(/interceptor 'quota': key 'name' = "quota": interceptor names must be unique/);
  });

  it.each([
    [
      'ttl over an hour',
      'jwt_private_key_path = "k.pem"\njwt_key_id = "k"\njwt_ttl = "3601s"',
      /key 'jwt_ttl' = "3601s": must not exceed 3600s/,
    ],
    [
      'ttl in fractional seconds',
      'jwt_private_key_path = "k.pem"\njwt_key_id = "k"\njwt_ttl = "1500ms"',
      /whole number of seconds/,
    ],
    ['key without kid', 'jwt_private_key_path = "k.pem"', /key 'jwt_key_id' = \(missing\): required/],
    ['kid without key', 'jwt_key_id = "k"', /set jwt_private_key_path too/],
    [
      'unknown gateway key',
      'jwt_algorithm = "RS256"',
      /\[openshell.gateway\]: key 'jwt_algorithm' = "RS256": unknown key/,
    ],
    ['unknown source type', 'provider_profile_sources = [{ type = "remote" }]', /key 'type' = "remote"/],
    [
      'source naming a missing interceptor',
      'provider_profile_sources = [{ type = "interceptor", name = "nope" }]',
      /no interceptor named 'nope'/,
    ],
    [
      'source listed twice',
      'provider_profile_sources = [{ type = "user" }, { type = "user" }]',
      /source listed twice/,
    ],
  ])('refuses gateway settings: %s', (_label, gateway, message) => {
    expect(refused(BASE, gateway)).toMatch(message);
  });

  it('accepts the maximum token lifetime', () => {
    expect(
      one(BASE, 'jwt_private_key_path = "/k.pem"\njwt_key_id = "k"\njwt_ttl = "3600s"').jwt?.ttlSeconds,
    ).toBe(3600);
  });

  it('refuses unknown tables and invalid TOML with the line', () => {
    expect(() => parseGatewayConfig('[openshell.gatway]\nx = 1', { source: 'a.toml' })).toThrow(
      /a\.toml: gateway config: key 'openshell.gatway'/,
    );
    expect(() => parseGatewayConfig('[openshell.gateway]\nx = ', { source: 'a.toml' })).toThrow(
      /a\.toml: invalid TOML at line 2/,
    );
  });
});

describe('parseDuration', () => {
  it('accepts only <integer>ms and <integer>s', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('3s')).toBe(3000);
    for (const bad of ['3', '3 s', '-1s', '1m', '1.0s', ' 3s', '3S', ''])
      expect(parseDuration(bad)).toBeUndefined();
  });
});

describe('loadGatewayConfig', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('resolves paths against the file directory and names the file in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gwcfg-'));
    dirs.push(dir);
    const path = join(dir, 'gateway.toml');
    await writeFile(path, '[openshell.gateway]\njwt_private_key_path = "gw.pem"\njwt_key_id = "k"\n');
    const cfg = await loadGatewayConfig(path);
    expect(cfg.jwt?.privateKeyPath).toBe(join(dir, 'gw.pem'));
    expect(cfg.source).toBe(path);
    await expect(loadGatewayConfig(join(dir, 'missing.toml'))).rejects.toThrow(/missing\.toml: cannot read/);
  });
});

describe('gatewayConfigFromObject', () => {
  it('applies the same rules to a configuration built in code', () => {
    const cfg = gatewayConfigFromObject({
      gateway_id: 'harness',
      interceptors: [
        { name: 'a', grpc_endpoint: 'http://in-process.invalid:1', allow_insecure_transport: true },
      ],
    });
    expect(cfg.issuer).toBe('openshell-gateway:harness');
    expect(cfg.interceptors[0]?.timeoutMs).toBe(500);
    expect(() =>
      gatewayConfigFromObject({ interceptors: [{ name: 'a', grpc_endpoint: 'http://x:1', timeout: 5 }] }),
    ).toThrow("interceptor 'a': key 'timeout' = 5: expected a string");
  });
});
