import * as grpc from '@grpc/grpc-js';
import {
  evaluationPhaseFields,
  GatewayInterceptorClient,
  type InterceptorEvaluation,
  type InterceptorManifest,
  type InterceptorResult,
  type JsonObject,
  OPENSHELL_SERVICE,
  type Phase,
} from '@openshell-interceptors/protocol';
import { type RunningServer, serve } from '@openshell-interceptors/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import naming from './index.js';
import { createNamingInterceptor, generatedName, namingOptionsFromEnv, toLabel } from './naming.js';

const alice = { kind: 'user', subject: 'Alice.Smith@example.com', provider: 'oidc' };

function ev(
  phase: Phase,
  operation: JsonObject,
  principal: Record<string, string> = alice,
): InterceptorEvaluation {
  return {
    interceptorName: 'naming',
    bindingId: 'create-sandbox',
    service: OPENSHELL_SERVICE,
    method: 'CreateSandbox',
    principal,
    ...evaluationPhaseFields(phase, operation),
  };
}

const fixed = createNamingInterceptor({ randomSuffix: (n) => 'x'.repeat(n) });

describe('modify: names', () => {
  it('fills a missing name from the user principal with a random DNS-safe suffix', async () => {
    const r = await naming.evaluate(ev('modify_operation', {}));
    expect(r.allowed).toBe(true);
    expect(r.patches).toHaveLength(1);
    expect(r.patches[0]).toMatchObject({ op: 'add', path: '/name' });
    expect(r.patches[0]!.value).toMatch(/^alice-smith-[a-z0-9]{5}$/);
    expect(r.logAnnotations).toEqual({ naming: 'generated' });
  });

  it('names after the sandbox id for sandbox callers, and "sandbox" for anonymous ones', async () => {
    const sb = await fixed.evaluate(ev('modify_operation', {}, { kind: 'sandbox', sandbox_id: 'SB_42' }));
    expect(sb.patches[0]!.value).toBe('sb-42-xxxxx');
    const anon = await fixed.evaluate(ev('modify_operation', {}, { kind: 'anonymous' }));
    expect(anon.patches[0]!.value).toBe('sandbox-xxxxx');
  });

  it('keeps generated names within 63 characters and free of accents and symbols', () => {
    const long = generatedName({ kind: 'user', subject: `${'Zoë-'.repeat(30)}@x` }, 'abcde');
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(long.startsWith('zoe-zoe')).toBe(true);
    expect(toLabel('--Ünïcode__Name!!', 63)).toBe('unicode-name');
  });

  it('lower-cases a given name with one replace, and leaves a lower-case one alone', async () => {
    const r = await naming.evaluate(ev('modify_operation', { name: 'Team-A', workspace: 'w' }));
    expect(r.patches).toEqual([{ op: 'replace', path: '/name', value: 'team-a', from: '' }]);
    expect(r.logAnnotations).toEqual({ naming: 'lower-cased' });
    const same = await naming.evaluate(ev('modify_operation', { name: 'team-a' }));
    expect(same.patches).toEqual([]);
  });
});

describe('validate: names', () => {
  const denied = async (name: string, i = naming) => {
    const r = await i.evaluate(ev('validate', { name }));
    expect(r.allowed).toBe(false);
    expect(r.statusCode).toBe('INVALID_ARGUMENT');
    return r.reason;
  };

  it('allows a valid DNS label', async () => {
    expect((await naming.evaluate(ev('validate', { name: 'team-a-01' }))).allowed).toBe(true);
  });

  it('denies names that break the pattern, suggesting a fix', async () => {
    expect(await denied('team_a')).toBe(
      `sandbox name "team_a" must be a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit): rename it, for example "team-a"`,
    );
    expect(await denied('-edge-')).toContain('for example "edge"');
  });

  it('denies names over 63 characters, saying how long they are', async () => {
    expect(await denied('a'.repeat(64))).toMatch(/is 64 characters long: use at most 63/);
    expect((await naming.evaluate(ev('validate', { name: 'a'.repeat(63) }))).allowed).toBe(true);
  });

  it('denies reserved words, listing them', async () => {
    expect(await denied('admin')).toMatch(
      /^sandbox name "admin" is reserved: choose another name \(reserved: default/,
    );
  });

  it('denies an empty name (when the modify binding was disabled by the operator)', async () => {
    const r = await naming.evaluate(ev('validate', {}));
    expect(r).toMatchObject({ allowed: false, statusCode: 'INVALID_ARGUMENT' });
    expect(r.reason).toMatch(/name is empty/);
  });

  it('takes a custom pattern, hint and reserved list', async () => {
    const custom = createNamingInterceptor({
      pattern: /^team-[a-z]+-[0-9]+$/,
      patternHint: 'team-<team>-<number>',
      reserved: ['team-ops-1'],
    });
    expect(await denied('scratch', custom)).toBe(
      'sandbox name "scratch" must be team-<team>-<number>: rename it',
    );
    expect(await denied('team-ops-1', custom)).toMatch(/reserved/);
    expect((await custom.evaluate(ev('validate', { name: 'team-blue-7' }))).allowed).toBe(true);
  });
});

describe('configuration from the environment', () => {
  it('reads NAMING_* variables', async () => {
    const o = namingOptionsFromEnv({
      NAMING_PATTERN: 'dev-[a-z]+',
      NAMING_PATTERN_HINT: 'dev-<word>',
      NAMING_RESERVED: 'dev-prod, dev-root',
      NAMING_SUFFIX_LENGTH: '8',
      NAMING_FAILURE_POLICY: 'fail_open',
    });
    expect(o).toMatchObject({ patternHint: 'dev-<word>', suffixLength: 8, failurePolicy: 'fail_open' });
    const i = createNamingInterceptor(o);
    expect(i.manifest().failurePolicy).toBe('fail_open');
    expect((await i.evaluate(ev('validate', { name: 'dev-box' }))).allowed).toBe(true);
    expect((await i.evaluate(ev('validate', { name: 'dev-box-2' }))).allowed).toBe(false);
    expect((await i.evaluate(ev('validate', { name: 'dev-root' }))).reason).toMatch(/reserved/);
  });

  it('names the variable that is wrong', () => {
    expect(() => namingOptionsFromEnv({ NAMING_PATTERN: '(' })).toThrow(
      /NAMING_PATTERN is not a valid regular expression/,
    );
    expect(() => namingOptionsFromEnv({ NAMING_SUFFIX_LENGTH: '0' })).toThrow(/NAMING_SUFFIX_LENGTH/);
    expect(() => namingOptionsFromEnv({ NAMING_FAILURE_POLICY: 'maybe' })).toThrow(/NAMING_FAILURE_POLICY/);
  });
});

describe('over real gRPC', () => {
  let server: RunningServer;
  let client: InstanceType<typeof GatewayInterceptorClient>;
  beforeAll(async () => {
    server = await serve(naming, { listen: '127.0.0.1:0', insecure: true });
    client = new GatewayInterceptorClient(server.address, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await server.close({ graceMs: 0 });
  });

  const evaluate = (e: InterceptorEvaluation) =>
    new Promise<InterceptorResult>((resolve, reject) =>
      client.evaluate(e, (err, r) => (err ? reject(err) : resolve(r))),
    );

  it('describes one CreateSandbox binding with modify and validate', async () => {
    const m = await new Promise<InterceptorManifest>((resolve, reject) =>
      client.describe({}, (err, r) => (err ? reject(err) : resolve(r))),
    );
    expect(m.name).toBe('naming');
    expect(m.bindings).toEqual([
      {
        id: 'create-sandbox',
        selector: {
          rpc: `${OPENSHELL_SERVICE}/CreateSandbox`,
          service: OPENSHELL_SERVICE,
          method: 'CreateSandbox',
        },
        phases: [2, 3],
        failurePolicy: '',
      },
    ]);
  });

  it('patches and then validates a request as the gateway would call it', async () => {
    const m = await evaluate(ev('modify_operation', { name: 'My-Box' }));
    expect(m.patches).toEqual([{ op: 'replace', path: '/name', value: 'my-box', from: '' }]);
    expect((await evaluate(ev('validate', { name: 'my-box' }))).allowed).toBe(true);
    const d = await evaluate(ev('validate', { name: 'my_box' }));
    expect(d).toMatchObject({ allowed: false, statusCode: 'INVALID_ARGUMENT' });
    expect(d.reason).toContain('for example "my-box"');
  });
});
