import { spawn } from 'node:child_process';
import {
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { InterceptorEvaluation } from '@openshell-interceptors/protocol';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { evaluation } from './__fixtures__/evaluations.js';
import { failure, healthClient, interceptorClient } from './__fixtures__/grpc.js';
import { mint, type TestKey, testKey, unsignedToken } from './__fixtures__/tokens.js';
import { ServingStatus } from './health.js';
import { interceptor } from './interceptor.js';
import { allow, deny } from './results.js';
import { type RunningServer, serve } from './serve.js';

const silent = pino({ level: 'silent' });
const fixture = (name: string) => readFileSync(new URL(`./__fixtures__/tls/${name}`, import.meta.url));

function svc() {
  return interceptor('svc', { logger: silent })
    .modify('CreateSandbox', ({ draft, principal }) => {
      draft.name ??= principal.kind === 'user' ? `${principal.subject.split('@')[0]}-box` : 'box';
    })
    .validate('CreateSandbox', ({ operation }) =>
      operation.name === 'forbidden' ? deny('INVALID_ARGUMENT', 'pick another name') : allow(),
    )
    .validate('DeleteSandbox', () => {
      throw new Error('secret internals: db password hunter2');
    });
}

const servers: RunningServer[] = [];
const clients: { close(): void }[] = [];
async function start(i = svc(), opts: Partial<Parameters<typeof serve>[1]> = {}) {
  const s = await serve(i, { listen: '127.0.0.1:0', insecure: true, logger: silent, ...opts });
  servers.push(s);
  return s;
}
function client(address: string, creds?: grpc.ChannelCredentials, options?: grpc.ClientOptions) {
  const c = interceptorClient(address, creds, options);
  clients.push(c);
  return c;
}
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close({ graceMs: 0 })));
});

describe('serve over loopback gRPC', () => {
  it('answers Describe, Evaluate (patches and denials) like the in-process evaluate', async () => {
    const s = await start();
    expect(s.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(s.port).toBeGreaterThan(0);
    const c = client(s.address);
    const m = await c.describe();
    expect(m.name).toBe('svc');
    expect(m.bindings.map((b) => b.id)).toEqual(['create-sandbox', 'delete-sandbox']);
    const ev = evaluation('CreateSandbox', 'modify_operation', {}, { bindingId: 'create-sandbox' });
    const r = await c.evaluate(ev);
    expect(r).toEqual(await svc().evaluate(ev));
    expect(r.patches).toEqual([{ op: 'add', path: '/name', value: 'alice-box', from: '' }]);
    const d = await c.evaluate(evaluation('CreateSandbox', 'validate', { name: 'forbidden' }));
    expect(d).toMatchObject({ allowed: false, statusCode: 'INVALID_ARGUMENT', reason: 'pick another name' });
  });

  it('sends INTERNAL with a generic message when a handler throws', async () => {
    const s = await start();
    const err = await failure(
      client(s.address).evaluate(evaluation('DeleteSandbox', 'validate', { name: 'x' })),
    );
    expect(err.code).toBe(grpc.status.INTERNAL);
    expect(err.details).toBe('interceptor handler failed');
    expect(err.message).not.toContain('hunter2');
  });

  it('sends INVALID_ARGUMENT for an evaluation with no phase and UNIMPLEMENTED for an unhandled RPC', async () => {
    const s = await start();
    const c = client(s.address);
    const noPhase: InterceptorEvaluation = {
      ...evaluation('CreateSandbox', 'validate', {}),
      validate: undefined,
    };
    expect((await failure(c.evaluate(noPhase))).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await failure(c.evaluate(evaluation('UpdateConfig', 'validate', {})))).code).toBe(
      grpc.status.UNIMPLEMENTED,
    );
    expect((await failure(c.snapshot())).code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('hands the call deadline to the handler as an AbortSignal', async () => {
    let aborted: string | undefined;
    const i = interceptor('slow', { logger: silent }).validate(
      'CreateSandbox',
      ({ signal, deadline }) =>
        new Promise<undefined>((resolve) => {
          expect(deadline).toBeGreaterThan(Date.now());
          signal.addEventListener('abort', () => {
            aborted = (signal.reason as Error).name;
            resolve(undefined);
          });
        }),
    );
    const s = await start(i);
    const r = await client(s.address).evaluate(evaluation('CreateSandbox', 'validate', {}), {
      deadlineMs: 1500,
    });
    expect(r.allowed).toBe(true);
    expect(aborted).toBe('TimeoutError');
  });

  it("aborts the handler's signal when the client cancels the call", async () => {
    let started: () => void = () => {};
    const running = new Promise<void>((r) => {
      started = r;
    });
    const reason = new Promise<string>((resolve) => {
      const i = interceptor('cancellable', { logger: silent }).validate(
        'CreateSandbox',
        ({ signal }) =>
          new Promise<undefined>(() => {
            signal.addEventListener('abort', () => resolve((signal.reason as Error).name));
            started();
          }),
      );
      void start(i).then((s) => {
        const call = client(s.address).raw.evaluate(
          evaluation('CreateSandbox', 'validate', {}),
          new grpc.Metadata(),
          { deadline: Date.now() + 30_000 },
          () => {},
        );
        void running.then(() => call.cancel());
      });
    });
    expect(await reason).toBe('AbortError');
  });

  it('refuses requests over the configured receive size', async () => {
    const s = await start(undefined, { maxReceiveBytes: 1024 });
    const c = client(s.address);
    const big = evaluation('CreateSandbox', 'validate', { name: 'x'.repeat(4096) });
    expect((await failure(c.evaluate(big))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect((await c.evaluate(evaluation('CreateSandbox', 'validate', { name: 'ok' }))).allowed).toBe(true);
  });

  it('serves provider profiles with the content revision', async () => {
    const i = interceptor('catalog', { logger: silent }).providerProfiles(() => [
      { id: 'github', displayName: 'GitHub' },
    ]);
    const s = await start(i);
    const c = client(s.address);
    expect((await c.describe()).providerProfiles).toBe(true);
    const snap = await c.snapshot();
    expect(snap.profiles.map((p) => p.id)).toEqual(['github']);
    expect(snap.revision).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('records metrics in the given registry and logs one line per evaluation', async () => {
    const registry = new Registry();
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const s = await start(undefined, { metrics: registry, logger });
    const c = client(s.address);
    await c.evaluate(evaluation('CreateSandbox', 'modify_operation', {}));
    await c.evaluate(evaluation('CreateSandbox', 'validate', { name: 'forbidden' }));
    const text = await registry.metrics();
    expect(text).toContain(
      'openshell_interceptor_evaluations_total{interceptor="svc",binding_id="create-sandbox",phase="modify_operation",decision="allow"} 1',
    );
    expect(text).toContain('decision="deny"} 1');
    expect(text).toContain(
      'openshell_interceptor_patches_total{interceptor="svc",binding_id="create-sandbox"} 1',
    );
    const evals = lines.filter((l) => l.msg === 'evaluation');
    expect(evals).toHaveLength(2);
    expect(evals[0]).toMatchObject({
      interceptor: 'svc',
      binding_id: 'create-sandbox',
      phase: 'modify_operation',
      rpc: 'openshell.v1.OpenShell/CreateSandbox',
      principal_subject: 'alice@example.com',
      decision: 'allow',
      patch_count: 1,
    });
    expect(typeof evals[0]!.latency_ms).toBe('number');
    expect(evals[1]).toMatchObject({
      decision: 'deny',
      code: 'INVALID_ARGUMENT',
      reason: 'pick another name',
    });
  });

  it('requires auth or an explicit insecure flag, and warns at start when insecure', async () => {
    await expect(serve(svc(), { listen: '127.0.0.1:0', logger: silent })).rejects.toThrow(
      /authentication is required/,
    );
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    await start(undefined, { logger });
    expect(lines.join('')).toContain('authentication is disabled (insecure)');
  });

  it('refuses bad listen addresses with a clear message', async () => {
    for (const listen of ['localhost', 'unix://relative/path', 'unix:/x', '127.0.0.1:99999']) {
      await expect(serve(svc(), { listen, insecure: true, logger: silent })).rejects.toThrow(
        /listen address/,
      );
    }
  });
});

describe('health', () => {
  it('reports SERVING for the server and the interceptor service, NOT_FOUND for others', async () => {
    const s = await start();
    const h = healthClient(s.address);
    clients.push(h);
    expect((await h.check('')).status).toBe(ServingStatus.SERVING);
    expect((await h.check('openshell.gateway_interceptor.v1.GatewayInterceptor')).status).toBe(
      ServingStatus.SERVING,
    );
    expect((await failure(h.check('nope'))).code).toBe(grpc.status.NOT_FOUND);
  });

  it('streams NOT_SERVING to watchers when shutdown begins', async () => {
    const s = await start();
    const h = healthClient(s.address);
    clients.push(h);
    const seen: number[] = [];
    const stream = h.watch('');
    const ended = new Promise<void>((resolve) => {
      stream.on('data', (m: { status: number }) => {
        seen.push(m.status);
        if (m.status === ServingStatus.SERVING) void s.close();
      });
      stream.on('end', () => resolve());
      stream.on('error', () => resolve());
    });
    await ended;
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
  });
});

describe('authentication over gRPC', () => {
  let k1: TestKey;
  let other: TestKey;
  let s: RunningServer;
  const AUD = 'urn:openshell:extension:interceptor:svc';
  beforeAll(async () => {
    k1 = await testKey('k1');
    other = await testKey('k-other');
  });

  it('accepts the gateway token on every RPC and advertises the verified audience', async () => {
    s = await start(undefined, {
      insecure: false,
      auth: { jwks: { keys: [k1.publicJwk] }, audience: 'urn:custom' },
    });
    const c = client(s.address);
    const token = await mint(k1, { audience: 'urn:custom' });
    expect((await c.describe({ token })).expectedAudience).toBe('urn:custom');
    expect((await c.evaluate(evaluation('CreateSandbox', 'validate', {}), { token })).allowed).toBe(true);
    expect((await failure(c.snapshot({ token }))).code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('answers UNAUTHENTICATED for every case of the matrix, echoing nothing of the token', async () => {
    const registry = new Registry();
    s = await start(undefined, { insecure: false, auth: { publicKey: k1.publicPem }, metrics: registry });
    const c = client(s.address);
    const now = Math.floor(Date.now() / 1000);
    const cases: Record<string, string | undefined> = {
      'no token': undefined,
      'alg none': unsignedToken(AUD),
      'wrong typ': await mint(k1, { typ: 'JWT' }),
      'wrong aud': await mint(k1, { audience: 'urn:openshell:extension:interceptor:other' }),
      'aud as a list': await mint(k1, { audience: [AUD] }),
      'wrong iss': await mint(k1, { issuer: 'openshell-gateway:elsewhere' }),
      expired: await mint(k1, { iat: now - 1900, exp: now - 1000 }),
      'lifetime over an hour': await mint(k1, { iat: now - 60, exp: now - 60 + 3700 }),
      'caller_kind supervisor': await mint(k1, { claims: { caller_kind: 'supervisor' } }),
      'unknown key': await mint(other),
      garbage: 'zzz.yyy.xxx',
    };
    for (const [name, token] of Object.entries(cases)) {
      for (const call of [
        () => c.describe({ token }),
        () => c.evaluate(evaluation('CreateSandbox', 'validate', {}), { token }),
        () => c.snapshot({ token }),
      ]) {
        const err = await failure(call());
        expect(err.code, name).toBe(grpc.status.UNAUTHENTICATED);
        if (token) expect(err.details, name).not.toContain(token.split('.')[1]!.slice(0, 16));
      }
    }
    expect(
      (await c.evaluate(evaluation('CreateSandbox', 'validate', {}), { token: await mint(k1) })).allowed,
    ).toBe(true);
    expect(await registry.metrics()).toMatch(
      /openshell_interceptor_auth_failures_total\{reason="expired"\} 3/,
    );
  });

  it('leaves the health service open for probes', async () => {
    s = await start(undefined, { insecure: false, auth: { publicKey: k1.publicPem } });
    const h = healthClient(s.address);
    clients.push(h);
    expect((await h.check('')).status).toBe(ServingStatus.SERVING);
  });
});

describe('TLS', () => {
  const opts = { 'grpc.ssl_target_name_override': 'localhost' };

  it('serves over TLS', async () => {
    const s = await start(undefined, { tls: { cert: fixture('server.crt'), key: fixture('server.key') } });
    const c = client(s.address, grpc.credentials.createSsl(fixture('ca.crt')), opts);
    expect((await c.describe()).name).toBe('svc');
  });

  it('requires a client certificate from the configured CA for mTLS', async () => {
    const s = await start(undefined, {
      tls: { cert: fixture('server.crt'), key: fixture('server.key'), clientCa: fixture('ca.crt') },
    });
    const ok = client(
      s.address,
      grpc.credentials.createSsl(fixture('ca.crt'), fixture('client.key'), fixture('client.crt')),
      opts,
    );
    expect((await ok.describe()).name).toBe('svc');
    const anonymous = client(s.address, grpc.credentials.createSsl(fixture('ca.crt')), opts);
    expect((await failure(anonymous.describe({ deadlineMs: 5000 }))).code).toBe(grpc.status.UNAVAILABLE);
    const stranger = client(
      s.address,
      grpc.credentials.createSsl(fixture('ca.crt'), fixture('stranger.key'), fixture('stranger.crt')),
      opts,
    );
    expect((await failure(stranger.describe({ deadlineMs: 5000 }))).code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('unix sockets', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(realpathSync(tmpdir()), 'sdk-sock-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('listens on unix://PATH with mode 0600 and removes the socket on close', async () => {
    const path = join(dir, 'a.sock');
    const s = await start(undefined, { listen: `unix://${path}` });
    expect(s.address).toBe(`unix://${path}`);
    expect(s.port).toBeUndefined();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect((await client(s.address).describe()).name).toBe('svc');
    await s.close();
    expect(() => statSync(path)).toThrow();
  });

  it('refuses a socket that is in use, and removes a stale one nobody answers on', async () => {
    const path = join(dir, 'stale.sock');
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(path, r));
    await expect(start(undefined, { listen: `unix://${path}` })).rejects.toThrow(
      /another process is listening/,
    );
    await new Promise<void>((r) => holder.close(() => r()));
    // A crashed server leaves its socket file behind: listen in a child process and SIGKILL it.
    const child = spawn(
      process.execPath,
      ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", path],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
    expect(statSync(path).isSocket()).toBe(true);
    const s = await start(undefined, { listen: `unix://${path}` });
    expect((await client(s.address).describe()).name).toBe('svc');
  });

  it('refuses a path that is a regular file, a symlink, or goes through a symlinked directory', async () => {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    await expect(start(undefined, { listen: `unix://${file}` })).rejects.toThrow(/is not a socket/);
    const link = join(dir, 'link.sock');
    symlinkSync(join(dir, 'target.sock'), link);
    await expect(start(undefined, { listen: `unix://${link}` })).rejects.toThrow(/symbolic link/);
    symlinkSync(dir, join(dir, 'dirlink'));
    await expect(start(undefined, { listen: `unix://${join(dir, 'dirlink', 'x.sock')}` })).rejects.toThrow(
      /dirlink is a symbolic link/,
    );
  });
});

describe('graceful shutdown', () => {
  it('lets an in-flight call finish, refuses new calls, then resolves closed', async () => {
    let release: () => void = () => {};
    let started: () => void = () => {};
    const running = new Promise<void>((r) => {
      started = r;
    });
    const i = interceptor('busy', { logger: silent }).validate(
      'CreateSandbox',
      () =>
        new Promise<undefined>((r) => {
          started();
          release = () => r(undefined);
        }),
    );
    const s = await start(i);
    const c = client(s.address);
    const inflight = c.evaluate(evaluation('CreateSandbox', 'validate', {}));
    await running;
    const closing = s.close({ graceMs: 20_000 });
    // A fresh channel cannot reach the server any more.
    const late = client(s.address);
    expect((await failure(late.describe({ deadlineMs: 3000 }))).code).toBe(grpc.status.UNAVAILABLE);
    release();
    expect((await inflight).allowed).toBe(true);
    await closing;
    await s.closed;
  });

  it('cancels what is still running when the grace period ends', async () => {
    let aborted = false;
    let started: () => void = () => {};
    const running = new Promise<void>((r) => {
      started = r;
    });
    const i = interceptor('stuck', { logger: silent }).validate(
      'CreateSandbox',
      ({ signal }) =>
        new Promise<undefined>((r) => {
          started();
          signal.addEventListener('abort', () => {
            aborted = true;
            r(undefined);
          });
        }),
    );
    const s = await start(i);
    const c = client(s.address);
    const inflight = failure(c.evaluate(evaluation('CreateSandbox', 'validate', {})));
    await running;
    await s.close({ graceMs: 50 });
    expect(aborted).toBe(true);
    expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE]).toContain((await inflight).code);
  });
});
