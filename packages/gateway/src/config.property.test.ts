// Fuzz: the TOML config loader never crashes. Arbitrary text, arbitrary TOML-ish structures
// and mutated valid configurations end in a GatewayConfig or a GatewayConfigError with a
// message — never another exception type.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify, TomlDate } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../protocol/src/__fixtures__/arbitrary.js';
import { type GatewayConfig, GatewayConfigError, loadGatewayConfig, parseGatewayConfig } from './config.js';

/** Parse, and sort the outcome: a config, or the loader's own error with a message. */
function outcome(text: string): GatewayConfig | GatewayConfigError {
  try {
    return parseGatewayConfig(text, { source: 'fuzz.toml', baseDir: '/etc/openshell' });
  } catch (e) {
    if (!(e instanceof GatewayConfigError)) {
      throw new Error(
        `parseGatewayConfig threw ${(e as Error)?.constructor?.name} instead of GatewayConfigError: ${String(e)}\n--- input ---\n${text.slice(0, 300)}`,
      );
    }
    return e;
  }
}

function expectWellFormed(r: GatewayConfig | GatewayConfigError): void {
  if (r instanceof GatewayConfigError) {
    expect(r.message.length).toBeGreaterThan(10);
    expect(r.message).toMatch(/^fuzz\.toml: /);
    return;
  }
  expect(Array.isArray(r.interceptors)).toBe(true);
  for (const ic of r.interceptors) {
    expect(ic.name).not.toBe('');
    expect(ic.timeoutMs).toBeGreaterThan(0);
  }
}

const GATEWAY_KEYS = [
  'gateway_id',
  'jwt_private_key_path',
  'jwt_key_id',
  'jwt_ttl',
  'provider_profile_sources',
];
const INTERCEPTOR_KEYS = [
  'name',
  'grpc_endpoint',
  'tls_ca_cert_path',
  'audience',
  'allow_insecure_transport',
  'order',
  'failure_policy',
  'timeout',
  'max_response_bytes',
  'max_patches',
  'binding_policy',
  'bindings',
  'max_concurrency',
  'max_queue',
  'breaker',
  'describe_attempts',
  'describe_backoff',
  'unix_socket_uid',
];
const NESTED_KEYS = [
  'id',
  'rpc',
  'service',
  'method',
  'phases',
  'disabled',
  'type',
  'enabled',
  'error_threshold_percentage',
  'volume_threshold',
  'reset_timeout',
  'rolling_window',
];
const STRINGS = [
  '',
  ' ',
  'ext',
  'http://127.0.0.1:50051',
  'https://policy.internal:8443',
  'unix:///run/ext.sock',
  'unix://@abstract',
  'unix://relative',
  'http://user:pw@h:1',
  'http://h:1/path',
  'fail_closed',
  'fail_open',
  'dynamic',
  'allowlist',
  'exact',
  '500ms',
  '5s',
  '0ms',
  '1.5s',
  '99999999999999999999s',
  'modify_operation',
  'validate',
  'post_commit',
  'openshell.v1.OpenShell/CreateSandbox',
  'openshell.v1.OpenShell/',
  '/CreateSandbox',
  'builtin',
  'user',
  'interceptor',
  'openshell-gateway:openshell',
  'urn:a b',
  '\u0000',
  '__proto__',
  'constructor',
];

const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...GATEWAY_KEYS, ...INTERCEPTOR_KEYS, ...NESTED_KEYS) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'interceptors', 'gateway'),
  },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 6 }) },
);

/** TOML values of every kind, weighted to the ones the loader reads. */
const tomlValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(...STRINGS),
    fc.string({ maxLength: 10 }),
    fc.integer(),
    fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53 - 1, -(2 ** 53) + 1),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.double(),
    fc.boolean(),
    fc.constantFrom(
      new TomlDate('1979-05-27T07:32:00Z'),
      new TomlDate('1979-05-27'),
      new TomlDate('07:32:00'),
    ),
    fc.array(tie('v'), { maxLength: 3 }),
    fc
      .uniqueArray(fc.tuple(key, tie('v')), { maxLength: 4, selector: ([k]) => k })
      .map((e) => Object.fromEntries(e)),
  ),
})).v;

const table = fc
  .uniqueArray(fc.tuple(key, tomlValue), { maxLength: 6, selector: ([k]) => k })
  .map((e) => Object.fromEntries(e) as Record<string, unknown>);

/** `{ openshell: { gateway: { …, interceptors: [ … ] } } }` with random parts, rendered by smol-toml. */
const structured = fc
  .record(
    {
      gateway: table,
      interceptors: fc.array(table, { maxLength: 3 }),
      extraTop: fc.option(table, { nil: undefined }),
      interceptorsNotList: fc.boolean(),
    },
    { requiredKeys: ['gateway', 'interceptors', 'interceptorsNotList'] },
  )
  .map(({ gateway, interceptors, extraTop, interceptorsNotList }) => {
    const gw: Record<string, unknown> = { ...gateway };
    gw.interceptors = interceptorsNotList && interceptors[0] ? interceptors[0] : interceptors;
    const doc: Record<string, unknown> = { openshell: { gateway: gw } };
    if (extraTop) doc.extra = extraTop;
    try {
      return stringify(doc);
    } catch {
      // Some generated values have no TOML form (e.g. a NaN key); fall back to a fixed document.
      return '[openshell.gateway]\n';
    }
  });

const VALID = `[openshell.gateway]
gateway_id = "openshell"
provider_profile_sources = [{ type = "builtin" }, { type = "interceptor", name = "b" }]

[[openshell.gateway.interceptors]]
name = "a"
grpc_endpoint = "unix:///run/a.sock"
allow_insecure_transport = true
timeout = "250ms"
breaker = { enabled = true, reset_timeout = "5s" }
bindings = [{ id = "x", rpc = "openshell.v1.OpenShell/CreateSandbox", phases = ["validate"] }]

[[openshell.gateway.interceptors]]
name = "b"
grpc_endpoint = "https://b.internal:8443"
tls_ca_cert_path = "ca.pem"
allow_insecure_transport = true
binding_policy = "exact"
bindings = [{ rpc = "openshell.v1.OpenShell/DeleteSandbox", phases = ["validate", "post_commit"], failure_policy = "fail_open" }]
`;

/** The valid document with some bytes replaced, deleted or inserted. */
const mutatedValid = fc
  .array(
    fc.record({
      at: fc.nat({ max: VALID.length }),
      del: fc.nat({ max: 4 }),
      insert: fc.oneof(
        fc.string({ maxLength: 4 }),
        fc.constantFrom(
          '"',
          "'",
          '[',
          ']',
          '{',
          '}',
          '=',
          '\n',
          '#',
          '\\u',
          '"""',
          '[[',
          ']]',
          '.',
          ',',
          '\u0000',
        ),
      ),
    }),
    { minLength: 1, maxLength: 4 },
  )
  .map((edits) => {
    let text = VALID;
    for (const e of edits) {
      const at = Math.min(e.at, text.length);
      text = text.slice(0, at) + e.insert + text.slice(at + e.del);
    }
    return text;
  });

const TOKENS = [
  '[openshell.gateway]',
  '[[openshell.gateway.interceptors]]',
  '[openshell]',
  '[openshell.gateway.interceptors]',
  'name = ',
  'grpc_endpoint = ',
  'timeout = ',
  'bindings = ',
  'breaker = ',
  '"ext"',
  '"unix:///x.sock"',
  '"5s"',
  '1',
  '-0',
  '1e999',
  'nan',
  'inf',
  'true',
  '[',
  ']',
  '{',
  '}',
  ',',
  '=',
  '\n',
  '"',
  "'",
  '"""',
  '#',
  '1979-05-27',
  '0x10',
  '99999999999999999999',
];
const tokenSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 30 }).map((t) => t.join(''));

describe('gateway config loader (fuzz)', () => {
  it('parses the valid base document (so mutations start from something real)', () => {
    const r = outcome(VALID);
    expect(r).not.toBeInstanceOf(GatewayConfigError);
    expect((r as GatewayConfig).interceptors.map((i) => i.name)).toEqual(['a', 'b']);
  });

  it('never crashes on arbitrary strings', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 })),
        (text) => {
          expectWellFormed(outcome(text));
        },
      ),
      { numRuns: runs(300) },
    );
  });

  it('never crashes on token soup', () => {
    fc.assert(
      fc.property(tokenSoup, (text) => {
        expectWellFormed(outcome(text));
      }),
      { numRuns: runs(300) },
    );
  });

  it('never crashes on arbitrary TOML structures over the real keys', () => {
    fc.assert(
      fc.property(structured, (text) => {
        expectWellFormed(outcome(text));
      }),
      { numRuns: runs(300) },
    );
  });

  it('never crashes on byte-level mutations of a valid config', () => {
    fc.assert(
      fc.property(mutatedValid, (text) => {
        expectWellFormed(outcome(text));
      }),
      { numRuns: runs(300) },
    );
  });

  it('never crashes on deeply nested keys, tables and values', () => {
    const deep = fc
      .record({
        depth: fc.integer({ min: 1, max: 6000 }),
        style: fc.constantFrom('dotted', 'header', 'interceptor', 'array', 'inline'),
      })
      .map(({ depth, style }) => {
        const path = Array.from({ length: depth }, () => 'a').join('.');
        switch (style) {
          case 'dotted':
            return `[openshell.gateway]\n${path} = 1\n`;
          case 'header':
            return `[openshell.gateway.${path}]\nx = 1\n`;
          case 'interceptor':
            return `[[openshell.gateway.interceptors]]\nname = "a"\ngrpc_endpoint = "http://h:1"\n${path} = 1\n`;
          case 'array':
            return `[openshell.gateway]\ngateway_id = ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
          default:
            return `[openshell.gateway]\ngateway_id = ${'{ a = '.repeat(depth)}1${' }'.repeat(depth)}\n`;
        }
      });
    fc.assert(
      fc.property(deep, (text) => {
        expectWellFormed(outcome(text));
      }),
      {
        numRuns: runs(40),
        examples: [[`[openshell.gateway]\n${Array.from({ length: 5000 }, () => 'a').join('.')} = 1\n`]],
      },
    );
  });

  describe('loadGatewayConfig from a file', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'gw-config-fuzz-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('never crashes on arbitrary file contents, and names the file', async () => {
      const path = join(dir, 'gateway.toml');
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(structured, mutatedValid, tokenSoup, fc.uint8Array({ maxLength: 64 })),
          async (content) => {
            await writeFile(path, content);
            try {
              await loadGatewayConfig(path);
            } catch (e) {
              expect(e).toBeInstanceOf(GatewayConfigError);
              expect((e as Error).message.startsWith(`${path}: `)).toBe(true);
            }
          },
        ),
        { numRuns: runs(50) },
      );
    });
  });
});
