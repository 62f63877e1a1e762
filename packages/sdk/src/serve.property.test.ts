// Fuzz: a served interceptor answers arbitrary bytes with an error status (or, when the
// bytes happen to decode as an evaluation, a valid result) and keeps serving. A raw
// grpc-js client with a passthrough serializer sends the bytes; nothing is decoded on
// the client side except to check that an OK answer is a well-formed InterceptorResult.
import * as grpc from '@grpc/grpc-js';
import {
  evaluationPhaseFields,
  InterceptorEvaluation,
  InterceptorManifest,
  InterceptorResult,
  OPENSHELL_SERVICE,
  ProviderProfileSnapshot,
} from '@openshell-interceptors/protocol';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../protocol/src/__fixtures__/arbitrary.js';
import { mint, type TestKey, testKey } from './__fixtures__/tokens.js';
import { interceptor } from './interceptor.js';
import { allow, deny } from './results.js';
import { type RunningServer, serve } from './serve.js';

const SERVICE = '/openshell.gateway_interceptor.v1.GatewayInterceptor';
const AUD = 'urn:openshell:extension:interceptor:svc';

/** Every line the servers log at error level or above: an unexpected failure is a bug. */
const errors: string[] = [];
const logger = pino(
  { level: 'warn' },
  {
    write: (l: string) => {
      const line = JSON.parse(l) as { level: number; msg: string; err?: { message?: string } };
      if (line.level >= 50) errors.push(`${line.msg}: ${line.err?.message ?? ''}`);
    },
  },
);

function svc() {
  return interceptor('svc', { logger })
    .modify('CreateSandbox', ({ draft }) => {
      draft.name = (draft.name ?? 'box').toLowerCase();
    })
    .validate('CreateSandbox', ({ operation }) =>
      operation.name === 'no' ? deny('INVALID_ARGUMENT', 'no') : allow(),
    )
    .observe('DeleteSandbox', () => undefined)
    .providerProfiles(() => [{ id: 'github', displayName: 'GitHub' }]);
}

let key: TestKey;
let open: RunningServer;
let authed: RunningServer;
const clients: grpc.Client[] = [];

beforeAll(async () => {
  key = await testKey('k1');
  open = await serve(svc(), { listen: '127.0.0.1:0', insecure: true, logger });
  authed = await serve(svc(), {
    listen: '127.0.0.1:0',
    auth: { publicKey: key.publicPem, audience: AUD },
    logger,
  });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([open.close({ graceMs: 0 }), authed.close({ graceMs: 0 })]);
});

function rawClient(address: string): grpc.Client {
  const c = new grpc.Client(address, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

type Answer = { code: grpc.status; details: string; body?: Buffer };

/** Send raw bytes to a method; resolve with the status and, when OK, the raw answer. */
function send(c: grpc.Client, method: string, bytes: Buffer, md = new grpc.Metadata()): Promise<Answer> {
  return new Promise((resolve) => {
    c.makeUnaryRequest<Buffer, Buffer>(
      `${SERVICE}/${method}`,
      (b) => b,
      (b) => b,
      bytes,
      md,
      { deadline: Date.now() + 10_000 },
      (err, body) => {
        if (err) resolve({ code: err.code, details: err.details });
        else resolve({ code: grpc.status.OK, details: '', body: body as Buffer });
      },
    );
  });
}

const DECODERS: Record<string, (b: Buffer) => unknown> = {
  Evaluate: (b) => InterceptorResult.decode(b),
  Describe: (b) => InterceptorManifest.decode(b),
  SnapshotProviderProfiles: (b) => ProviderProfileSnapshot.decode(b),
};

function expectWellFormed(method: string, a: Answer): void {
  if (a.code === grpc.status.OK) {
    expect(() => DECODERS[method]?.(a.body as Buffer)).not.toThrow();
  } else {
    expect(a.code).toBeGreaterThan(0);
    expect(a.code).toBeLessThanOrEqual(16);
    expect(a.details.length).toBeGreaterThan(0);
  }
}

function validEvaluation(method: string, phase: 'modify_operation' | 'validate' | 'post_commit'): Buffer {
  const ev: InterceptorEvaluation = {
    interceptorName: 'svc',
    bindingId: '',
    service: OPENSHELL_SERVICE,
    method,
    principal: { kind: 'user', subject: 'alice@example.com', provider: 'oidc' },
    ...evaluationPhaseFields(phase, { name: 'Box', spec: { template: { image: 'x' } } }),
  };
  return Buffer.from(InterceptorEvaluation.encode(ev).finish());
}

const VALID = [
  validEvaluation('CreateSandbox', 'modify_operation'),
  validEvaluation('CreateSandbox', 'validate'),
  validEvaluation('DeleteSandbox', 'post_commit'),
];

/** Random bytes, and valid evaluations with bytes flipped, cut, or garbage appended. */
const payload = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
  {
    weight: 4,
    arbitrary: fc
      .record({
        base: fc.constantFrom(...VALID),
        edits: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
        cut: fc.option(fc.nat(), { nil: undefined }),
        tail: fc.uint8Array({ maxLength: 16 }),
      })
      .map(({ base, edits, cut, tail }) => {
        const b = Buffer.from(base);
        for (const e of edits) b[e.at % b.length] = e.byte;
        const body = cut === undefined ? b : b.subarray(0, cut % b.length);
        return Buffer.concat([body, Buffer.from(tail)]);
      }),
  },
);

describe('serve under arbitrary bytes (fuzz)', () => {
  it('answers every Evaluate payload with an error status or a valid result, then still evaluates', async () => {
    const c = rawClient(open.address);
    const codes = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(payload, async (bytes) => {
        const a = await send(c, 'Evaluate', bytes);
        codes.set(a.code, (codes.get(a.code) ?? 0) + 1);
        expectWellFormed('Evaluate', a);
      }),
      { numRuns: runs(300) },
    );
    // The fuzz reached both sides: refusals, and payloads that still decoded to evaluations.
    expect([...codes.keys()].some((k) => k !== grpc.status.OK)).toBe(true);
    const ok = await send(c, 'Evaluate', VALID[0] as Buffer);
    expect(ok.code).toBe(grpc.status.OK);
    const result = InterceptorResult.decode(ok.body as Buffer);
    expect(result).toMatchObject({ allowed: true });
    expect(result.patches).toEqual([{ op: 'replace', path: '/name', value: 'box', from: '' }]);
    expect(errors).toEqual([]);
  });

  it('answers arbitrary bytes to Describe and SnapshotProviderProfiles without breaking', async () => {
    const c = rawClient(open.address);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('Describe', 'SnapshotProviderProfiles'),
        payload,
        async (method, bytes) => {
          expectWellFormed(method, await send(c, method, bytes));
        },
      ),
      { numRuns: runs(100) },
    );
    const d = await send(c, 'Describe', Buffer.alloc(0));
    expect(InterceptorManifest.decode(d.body as Buffer).name).toBe('svc');
    expect(errors).toEqual([]);
  });

  it('with authentication on, refuses arbitrary bytes without a token before reading them, and keeps serving', async () => {
    const c = rawClient(authed.address);
    await fc.assert(
      fc.asyncProperty(payload, async (bytes) => {
        const a = await send(c, 'Evaluate', bytes);
        // Undecodable bytes may be refused by the transport first; a decodable call is refused by the token check.
        expect(a.code).not.toBe(grpc.status.OK);
        expectWellFormed('Evaluate', a);
      }),
      { numRuns: runs(100) },
    );
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${await mint(key)}`);
    const ok = await send(c, 'Evaluate', VALID[1] as Buffer, md);
    expect(ok.code).toBe(grpc.status.OK);
    expect(InterceptorResult.decode(ok.body as Buffer).allowed).toBe(true);
    expect(errors).toEqual([]);
  });

  it('survives a burst of concurrent garbage and answers a valid call in the middle of it', async () => {
    const c = rawClient(open.address);
    const garbage = fc.sample(payload, runs(200));
    const answers = await Promise.all([
      ...garbage.map((b) => send(c, 'Evaluate', b)),
      send(c, 'Evaluate', VALID[1] as Buffer),
    ]);
    for (const a of answers) expectWellFormed('Evaluate', a);
    expect(answers.at(-1)?.code).toBe(grpc.status.OK);
    expect(errors).toEqual([]);
  });
});
