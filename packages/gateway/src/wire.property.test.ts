// Fuzz: a compromised interceptor can put any bytes on the wire as its Evaluate answer.
// A raw grpc-js server answers with arbitrary bytes (random, or a valid InterceptorResult
// with bytes changed); the gateway decodes them as a real client would, and every call
// ends exactly as the contract says for what those bytes decode to: a failure (and the
// failure policy) when they do not decode or break a rule, else the decoded decision.
import * as grpc from '@grpc/grpc-js';
import {
  denialStatus,
  InterceptorManifest,
  InterceptorResult,
  type JsonObject,
} from '@openshell-interceptors/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../protocol/src/__fixtures__/arbitrary.js';
import { captureLogs, configFor } from './__fixtures__/harness.js';
import { createGateway, type Gateway } from './gateway.js';

const CS = 'openshell.v1.OpenShell/CreateSandbox';
const MAX_PATCHES = 4;
let answer: Buffer = Buffer.alloc(0);
let server: grpc.Server;
let port: number;
const gateways: Record<'fail_closed' | 'fail_open', Gateway> = {} as Record<
  'fail_closed' | 'fail_open',
  Gateway
>;

const manifest = Buffer.from(
  InterceptorManifest.encode(
    InterceptorManifest.fromPartial({
      name: 'rogue',
      bindings: [{ id: 'b', selector: { rpc: CS }, phases: [2] }],
    }),
  ).finish(),
);

beforeAll(async () => {
  server = new grpc.Server();
  const raw = (reply: () => Buffer): grpc.UntypedHandleCall =>
    ((_call: unknown, cb: (e: null, b: Buffer) => void) => cb(null, reply())) as grpc.handleUnaryCall<
      Buffer,
      Buffer
    >;
  const passthrough = {
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  };
  const svc = '/openshell.gateway_interceptor.v1.GatewayInterceptor';
  server.addService(
    {
      describe: { path: `${svc}/Describe`, ...passthrough },
      evaluate: { path: `${svc}/Evaluate`, ...passthrough },
    } as grpc.ServiceDefinition,
    { describe: raw(() => manifest), evaluate: raw(() => answer) },
  );
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  for (const policy of ['fail_closed', 'fail_open'] as const) {
    gateways[policy] = await createGateway(
      configFor([
        {
          name: 'rogue',
          grpc_endpoint: `http://127.0.0.1:${port}`,
          failure_policy: policy,
          max_patches: MAX_PATCHES,
          timeout: '5s',
          breaker: { enabled: false },
        },
      ]),
      { logger: captureLogs().logger },
    );
  }
});
afterAll(async () => {
  await Promise.all(Object.values(gateways).map((g) => g.close()));
  server.forceShutdown();
});

const VALID: Buffer[] = [
  { allowed: true, patches: [{ op: 'replace', path: '/name', value: 'patched', from: '' }] },
  {
    allowed: true,
    patches: [
      { op: 'add', path: '/labels/a', value: 'b', from: '' },
      { op: 'remove', path: '/labels/team', from: '' },
    ],
  },
  { allowed: false, reason: 'no', statusCode: 'NOT_FOUND' },
  { allowed: true, logAnnotations: { k: 'v' } },
].map((r) => Buffer.from(InterceptorResult.encode(InterceptorResult.fromPartial(r)).finish()));

const bytes = fc.oneof(
  // The valid answers themselves, so every branch of the contract is reached on every run.
  fc.constantFrom(...VALID),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc
    .record({
      base: fc.constantFrom(...VALID),
      edits: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), {
        minLength: 1,
        maxLength: 3,
      }),
      tail: fc.uint8Array({ maxLength: 12 }),
    })
    .map(({ base, edits, tail }) => {
      const b = Buffer.from(base);
      for (const e of edits) b[e.at % b.length] = e.byte;
      return Buffer.concat([b, Buffer.from(tail)]);
    }),
);

const REQUEST: JsonObject = { name: 'box', labels: { team: 'a' } };

describe('gateway against arbitrary interceptor answers (fuzz)', () => {
  it('ends every call as the contract says for what the bytes decode to, under both failure policies', async () => {
    const seen = { undecodable: 0, denied: 0, patched: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(
        bytes,
        fc.constantFrom('fail_closed' as const, 'fail_open' as const),
        async (b, policy) => {
          answer = b;
          let decoded: InterceptorResult | undefined;
          try {
            decoded = InterceptorResult.decode(b);
          } catch {
            decoded = undefined;
          }
          const out = await gateways[policy].intercept({
            method: 'CreateSandbox',
            request: structuredClone(REQUEST),
          });
          const ev = out.evaluations[0];
          expect(ev).toBeDefined();
          if (!decoded) seen.undecodable++;
          if (ev?.decision === 'error') {
            seen.failed++;
            if (policy === 'fail_closed') {
              expect(out.status).toEqual({
                code: 'PERMISSION_DENIED',
                message: `gateway interceptor 'rogue' failed closed: ${ev.error}`,
              });
            } else {
              expect(out.outcome).toBe('allowed');
            }
            expect(out.request).toEqual(REQUEST);
            return;
          }
          // Anything that decodes to a result is judged by that result.
          expect(decoded).toBeDefined();
          const r = decoded as InterceptorResult;
          expect(r.patches.length).toBeLessThanOrEqual(MAX_PATCHES);
          if (!r.allowed) {
            seen.denied++;
            expect(ev?.decision).toBe('deny');
            expect(out.status).toEqual(denialStatus(r.statusCode, r.reason));
            expect(out.request).toEqual(REQUEST);
          } else {
            expect(out.outcome).toBe('allowed');
            if (r.patches.length > 0) {
              seen.patched++;
              expect(ev?.applied).toBe(true);
            } else {
              expect(out.request).toEqual(REQUEST);
            }
          }
        },
      ),
      { numRuns: runs(300) },
    );
    // Every branch was reached.
    expect(seen.undecodable).toBeGreaterThan(0);
    expect(seen.failed).toBeGreaterThan(0);
    expect(seen.denied).toBeGreaterThan(0);
    expect(seen.patched).toBeGreaterThan(0);
  });
});
