import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import namingInterceptor from '@openshell-interceptors/example-naming';
import { serve } from '@openshell-interceptors/sdk';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSigningKey } from './keys.js';
import { loadSuite, runSuite, SuiteError } from './suite.js';
import { defineSuiteTests } from './vitest.js';

const suite = (name: string) => fileURLToPath(new URL(`./__fixtures__/suites/${name}`, import.meta.url));

describe('runSuite', () => {
  it('runs the naming suite: every case passes', async () => {
    const seen: string[] = [];
    const r = await runSuite(suite('naming.suite.yaml'), { onCase: (c) => seen.push(c.name) });
    expect(r.cases.filter((c) => !c.passed).map((c) => [c.name, c.failures])).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.name).toBe('naming rules');
    expect(seen).toEqual([
      'lower-cases a mixed-case name',
      'fills a missing name from the user',
      'denies a reserved name',
      'leaves other RPCs alone',
    ]);
  });

  it('proves failure policies declaratively with faults', async () => {
    const r = await runSuite(suite('faults.suite.yaml'));
    expect(r.cases.map((c) => [c.name, c.failures])).toEqual([
      ['a timeout fails closed', []],
      ['the next call is on time (times 1)', []],
    ]);
  });

  it('reports every failed expectation of a case in words', async () => {
    const r = await runSuite(suite('failing.suite.yaml'));
    expect(r.passed).toBe(false);
    const [wrong, right] = r.cases;
    expect(right?.passed).toBe(true);
    expect(wrong?.passed).toBe(false);
    expect(wrong?.failures).toEqual([
      'outcome: expected denied, got allowed (no status)',
      'operation /name: expected "Team-A", got "team-a"',
      'annotations.naming: expected "generated", got "lower-cased"',
    ]);
    expect(wrong?.evaluations).toContain(
      'modify_operation naming/create-sandbox: allow, 1 patch(es) applied',
    );
  });
});

describe('loadSuite refuses what it does not recognise', () => {
  it('a case without assertions is an error, not a silent pass', () => {
    expect(() => loadSuite(suite('no-assertion.suite.yaml'))).toThrow(
      /no-assertion\.suite\.yaml: cases\[0\]\.expect: a case needs an expect block/,
    );
  });

  it('an unknown key names the file and the key', () => {
    expect(() => loadSuite(suite('unknown-key.suite.yaml'))).toThrow(
      /unknown-key\.suite\.yaml: interceptors\[0\]\.failure_polcy: unknown key \(known keys: module, export, name, order, failure_policy/,
    );
  });

  it('a file without the suite apiVersion and kind is refused', () => {
    expect(() => loadSuite(suite('not-a-suite.yaml'))).toThrow(SuiteError);
    expect(() => loadSuite(suite('not-a-suite.yaml'))).toThrow(
      /not an interceptor test suite: expected "apiVersion: openshell-interceptors\/v1alpha1" and "kind: InterceptorTestSuite"/,
    );
  });

  describe('with inline files', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'suites-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    const head = 'apiVersion: openshell-interceptors/v1alpha1\nkind: InterceptorTestSuite\n';
    const naming = `interceptors:\n  - module: ${suite('../naming-module.ts')}\n`;
    const cases: [string, string, RegExp][] = [
      [
        'empty expect',
        `${naming}cases:\n  - { name: a, rpc: CreateSandbox, expect: {} }\n`,
        /cases\[0\]\.expect: the expect block asserts nothing/,
      ],
      [
        'unknown rpc',
        `${naming}cases:\n  - { name: a, rpc: MakeCoffee, expect: { outcome: allowed } }\n`,
        /cases\[0\]\.rpc: "MakeCoffee" is not one of the 25/,
      ],
      [
        'bad code',
        `${naming}cases:\n  - { name: a, rpc: DeleteSandbox, expect: { code: NOPE } }\n`,
        /cases\[0\]\.expect\.code: "NOPE" is not a gRPC status code name/,
      ],
      [
        'contradiction',
        `${naming}cases:\n  - { name: a, rpc: DeleteSandbox, expect: { outcome: allowed, code: NOT_FOUND } }\n`,
        /contradict outcome: allowed/,
      ],
      [
        'duplicate case',
        `${naming}cases:\n  - { name: a, rpc: DeleteSandbox, expect: { outcome: allowed } }\n  - { name: a, rpc: DeleteSandbox, expect: { outcome: allowed } }\n`,
        /cases\[1\]\.name: case name "a" is used twice/,
      ],
      ['no interceptors', 'interceptors: []\ncases: []\n', /interceptors: list at least one interceptor/],
      ['no cases', `${naming}cases: []\n`, /cases: list at least one case/],
      [
        'bad timeout',
        `interceptors:\n  - { module: x.ts, timeout: 2 }\ncases: []\n`,
        /interceptors\[0\]\.timeout: expected "<integer>ms" or "<integer>s"/,
      ],
      [
        'two faults in one',
        `interceptors:\n  - { module: x.ts, faults: [{ delay: 1s, hang: true }] }\ncases: []\n`,
        /interceptors\[0\]\.faults\[0\]: give exactly one fault/,
      ],
      [
        'bad principal',
        `${naming}cases:\n  - { name: a, rpc: DeleteSandbox, principal: robot, expect: { outcome: allowed } }\n`,
        /cases\[0\]\.principal: expected user\[:subject\]/,
      ],
      [
        'operation and overlay',
        `${naming}cases:\n  - { name: a, rpc: DeleteSandbox, operation: {}, overlay: {}, expect: { outcome: allowed } }\n`,
        /give operation .* or overlay .*, not both/,
      ],
      [
        'bad pointer',
        `${naming}cases:\n  - { name: a, rpc: DeleteSandbox, expect: { patched: { name: x } } }\n`,
        /expect\.patched: "name" is not a JSON Pointer/,
      ],
      [
        'endpoint without name',
        `interceptors:\n  - { endpoint: "http://127.0.0.1:1" }\ncases: []\n`,
        /interceptors\[0\]\.name: an endpoint needs a name/,
      ],
      ['two documents', `${naming}cases: []\n---\nfoo: 1\n`, /expected exactly one YAML document/],
    ];
    for (const [what, body, error] of cases) {
      it(`${what}`, async () => {
        const file = join(dir, `${what.replace(/ /g, '-')}.yaml`);
        await writeFile(file, `${head}${body}`);
        expect(() => loadSuite(file)).toThrow(error);
      });
    }

    it('runs over gRPC with tokens, and against a running endpoint with a given signing key', async () => {
      const grpcSuite = join(dir, 'grpc.yaml');
      await writeFile(
        grpcSuite,
        `${head}transport: grpc\n${naming}cases:\n  - { name: a, rpc: CreateSandbox, overlay: { name: Up }, expect: { patched: { /name: up } } }\n`,
      );
      expect((await runSuite(grpcSuite)).cases.map((c) => c.failures)).toEqual([[]]);

      const key = await createTestSigningKey('suite-key');
      const server = await serve(namingInterceptor, {
        listen: '127.0.0.1:0',
        logger: pino({ level: 'silent' }),
        auth: { publicKey: key.publicKey, keyId: 'suite-key', audience: 'urn:acme:naming' },
      });
      try {
        const remote = join(dir, 'remote.yaml');
        await writeFile(
          remote,
          `${head}signing_key: { private_key: ${key.privateKeyPath}, key_id: suite-key }\ninterceptors:\n  - { endpoint: "http://${server.address}", name: remote, audience: "urn:acme:naming", failure_policy: fail_closed }\ncases:\n  - name: a\n    rpc: CreateSandbox\n    overlay: { name: Remote }\n    expect:\n      patched: { /name: remote }\n      evaluations: [{ interceptor: remote, decision: allow, applied: true }, { interceptor: remote, phase: validate }]\n`,
        );
        const r = await runSuite(remote);
        expect(r.cases.map((c) => c.failures)).toEqual([[]]);
      } finally {
        await server.close({ graceMs: 100 });
        await key.cleanup();
      }
    });

    it('a module that does not export an Interceptor fails at start, naming the module', async () => {
      const mod = join(dir, 'nothing.mjs');
      await writeFile(mod, 'export default 42;\n');
      const file = join(dir, 'nothing.yaml');
      await writeFile(
        file,
        `${head}interceptors:\n  - module: ./nothing.mjs\ncases:\n  - { name: a, rpc: DeleteSandbox, expect: { outcome: allowed } }\n`,
      );
      await expect(runSuite(file)).rejects.toThrow(
        /interceptors\[0\]\.module: .*nothing\.mjs has no Interceptor as export 'default'/,
      );
    });
  });
});

// The same suite as vitest tests, one per case.
defineSuiteTests(new URL('./__fixtures__/suites/naming.suite.yaml', import.meta.url));
