// A hand-written GatewayInterceptor service on raw grpc-js (no SDK, as another language's
// service would be), with defects that can be planted one by one for `check` to find.
import type { KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  CALLER_KIND,
  DescribeRequest,
  evaluationPayload,
  GatewayInterceptorPhase,
  gatewayIssuer,
  InterceptorEvaluation,
  InterceptorManifest,
  InterceptorResult,
  type JsonPatch,
  TOKEN_TYPE,
} from '@openshell-interceptors/protocol';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';

export type Defect =
  // manifest
  | 'empty-name'
  | 'duplicate-id'
  | 'unknown-rpc-selector'
  | 'bad-phase'
  | 'bad-failure-policy'
  | 'post-commit-fail-closed'
  | 'audience-mismatch'
  // results
  | 'patch-in-validate'
  | 'deny-in-post-commit'
  | 'lowercase-status'
  | 'bad-pointer'
  | 'secret-pointer'
  | 'unapplicable-patch'
  | 'unknown-field-patch'
  | 'too-many-patches'
  | 'oversized'
  // bad input, load
  | 'no-phase-ok'
  | 'garbage-ok'
  | 'wedged-by-garbage'
  | 'racy'
  | 'degrades'
  // auth
  | 'accepts-no-token'
  | 'ignores-audience'
  | 'ignores-expiry'
  | 'ignores-lifetime'
  | 'skips-signature'
  | 'ignores-typ'
  | 'ignores-issuer'
  | 'ignores-caller-kind'
  | 'wrong-auth-code'
  | 'echoes-token';

export interface BrokenServiceOptions {
  readonly defects?: readonly Defect[];
  /** Verify gateway tokens with this Ed25519 public key. */
  readonly publicKey?: KeyObject;
  readonly audience?: string;
  /** With `degrades`: Evaluate calls after this many take `slowMs`. */
  readonly degradeAfter?: number;
  readonly slowMs?: number;
}

export interface BrokenService {
  readonly endpoint: string;
  close(): Promise<void>;
}

const SERVICE = '/openshell.gateway_interceptor.v1.GatewayInterceptor';
const CREATE_SANDBOX = 'openshell.v1.OpenShell/CreateSandbox';
const M = GatewayInterceptorPhase;

function manifest(d: Set<Defect>, audience: string): InterceptorManifest {
  const b = (id: string, rpc: string, phases: number[], failurePolicy = '') => ({
    id,
    selector: { rpc, service: '', method: '' },
    phases,
    failurePolicy,
  });
  const bindings = [
    b('modify', CREATE_SANDBOX, [M.GATEWAY_INTERCEPTOR_PHASE_MODIFY_OPERATION]),
    b('check', CREATE_SANDBOX, [M.GATEWAY_INTERCEPTOR_PHASE_VALIDATE]),
    b(
      'observe',
      CREATE_SANDBOX,
      [M.GATEWAY_INTERCEPTOR_PHASE_POST_COMMIT],
      d.has('post-commit-fail-closed') ? 'fail_closed' : 'fail_open',
    ),
    b('provider', 'openshell.v1.OpenShell/CreateProvider', [M.GATEWAY_INTERCEPTOR_PHASE_MODIFY_OPERATION]),
  ];
  if (d.has('duplicate-id'))
    bindings.push(b('check', 'openshell.v1.OpenShell/DeleteSandbox', [M.GATEWAY_INTERCEPTOR_PHASE_VALIDATE]));
  if (d.has('unknown-rpc-selector'))
    bindings.push(b('list', 'openshell.v1.OpenShell/ListSandboxes', [M.GATEWAY_INTERCEPTOR_PHASE_VALIDATE]));
  if (d.has('bad-phase')) bindings.push(b('odd', 'openshell.v1.OpenShell/DeleteSandbox', [1]));
  if (d.has('bad-failure-policy'))
    bindings.push(
      b(
        'maybe',
        'openshell.v1.OpenShell/DeleteProvider',
        [M.GATEWAY_INTERCEPTOR_PHASE_VALIDATE],
        'fail_maybe',
      ),
    );
  return {
    name: d.has('empty-name') ? '' : 'broken',
    bindings,
    failurePolicy: '',
    providerProfiles: false,
    expectedAudience: d.has('audience-mismatch') ? 'urn:somebody:else' : audience,
  };
}

const ok = (over: Partial<InterceptorResult> = {}): InterceptorResult => ({
  allowed: true,
  reason: '',
  statusCode: '',
  patches: [],
  logAnnotations: {},
  ...over,
});
const add = (path: string, value: unknown): JsonPatch => ({ op: 'add', path, value, from: '' });

class Status extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function answer(d: Set<Defect>, ev: InterceptorEvaluation, inflight: number): InterceptorResult {
  const payload = evaluationPayload(ev);
  if (!payload) {
    if (d.has('no-phase-ok')) return ok();
    throw new Status(grpc.status.INVALID_ARGUMENT, 'the evaluation has no phase');
  }
  if (d.has('racy') && inflight > 1) return ok({ allowed: false, statusCode: 'UNAVAILABLE', reason: 'busy' });
  const rpc = `${ev.service}/${ev.method}`;
  const key = `${ev.bindingId}:${payload.phase}:${rpc}`;
  switch (key) {
    case `modify:modify_operation:${CREATE_SANDBOX}`: {
      if (d.has('bad-pointer')) return ok({ patches: [add('labels/checked', 'yes')] });
      if (d.has('unapplicable-patch'))
        return ok({ patches: [{ op: 'replace', path: '/labels/missing', value: 'x', from: '' }] });
      if (d.has('unknown-field-patch')) return ok({ patches: [add('/notAField', 'x')] });
      if (d.has('too-many-patches'))
        return ok({ patches: Array.from({ length: 40 }, (_, i) => add(`/labels/k${i}`, 'v')) });
      return ok({ patches: [add('/labels/checked', 'yes')] });
    }
    case `check:validate:${CREATE_SANDBOX}`:
      if (d.has('patch-in-validate')) return ok({ patches: [add('/labels/late', 'x')] });
      if (d.has('lowercase-status'))
        return ok({ allowed: false, statusCode: 'invalid_argument', reason: 'names must be short' });
      if (d.has('oversized')) return ok({ logAnnotations: { padding: 'x'.repeat(2_000_000) } });
      return ok({ logAnnotations: { checked: 'yes' } });
    case `observe:post_commit:${CREATE_SANDBOX}`:
      return d.has('deny-in-post-commit') ? ok({ allowed: false, reason: 'too late' }) : ok();
    case 'provider:modify_operation:openshell.v1.OpenShell/CreateProvider':
      return d.has('secret-pointer') ? ok({ patches: [add('/provider/credentials/EXTRA', 'x')] }) : ok();
    case 'check:validate:openshell.v1.OpenShell/DeleteSandbox':
    case 'maybe:validate:openshell.v1.OpenShell/DeleteProvider':
      return ok();
    default:
      throw new Status(grpc.status.UNIMPLEMENTED, `no binding handles ${key}`);
  }
}

/** A deliberately hand-rolled token check so each rule can be switched off. */
async function verify(d: Set<Defect>, md: grpc.Metadata, key: KeyObject, audience: string): Promise<void> {
  const refuse = (why: string) => {
    const code = d.has('wrong-auth-code') ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED;
    const raw = String(md.get('authorization')[0] ?? '');
    throw new Status(
      code,
      d.has('echoes-token') ? `bad token ${raw}: ${why}` : `gateway token rejected: ${why}`,
    );
  };
  const value = md.get('authorization')[0];
  if (typeof value !== 'string' || !value.startsWith('Bearer ')) {
    if (d.has('accepts-no-token')) return;
    refuse('missing');
  }
  const token = (value as string).slice('Bearer '.length);
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(token);
    claims = decodeJwt(token);
  } catch {
    return refuse('malformed');
  }
  if (!d.has('ignores-typ') && header.typ !== TOKEN_TYPE) refuse('type');
  if (!d.has('skips-signature')) {
    try {
      await jwtVerify(token, key, { algorithms: ['EdDSA'], currentDate: new Date(0) });
    } catch {
      refuse('signature');
    }
  }
  const now = Date.now() / 1000;
  if (!d.has('ignores-issuer') && claims.iss !== gatewayIssuer('openshell')) refuse('issuer');
  if (!d.has('ignores-audience') && claims.aud !== audience) refuse('audience');
  if (!d.has('ignores-expiry') && (typeof claims.exp !== 'number' || claims.exp < now - 30))
    refuse('expired');
  if (!d.has('ignores-lifetime') && (claims.exp ?? 0) - (claims.iat ?? 0) > 3600) refuse('lifetime');
  if (!d.has('ignores-caller-kind') && claims.caller_kind !== CALLER_KIND) refuse('caller kind');
}

export async function startBrokenService(options: BrokenServiceOptions = {}): Promise<BrokenService> {
  const d = new Set(options.defects ?? []);
  const audience = options.audience ?? 'urn:openshell:extension:interceptor:broken';
  let inflight = 0;
  let evaluations = 0;
  let wedged = false;
  const server = new grpc.Server();
  type Handler = (req: Buffer, md: grpc.Metadata) => Promise<Buffer>;
  const unary =
    (h: Handler): grpc.handleUnaryCall<Buffer, Buffer> =>
    (call, cb) => {
      h(call.request, call.metadata).then(
        (res) => cb(null, res),
        (e: unknown) =>
          cb(
            e instanceof Status
              ? { code: e.code, details: e.message }
              : { code: grpc.status.INTERNAL, details: 'internal' },
          ),
      );
    };
  const guard = async (md: grpc.Metadata) => {
    if (wedged) throw new Status(grpc.status.UNAVAILABLE, 'wedged');
    if (options.publicKey) await verify(d, md, options.publicKey, audience);
  };
  const lenient = d.has('garbage-ok') || d.has('wedged-by-garbage');
  server.addService(
    {
      describe: {
        path: `${SERVICE}/Describe`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
      evaluate: {
        path: `${SERVICE}/Evaluate`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        // A strict service lets the decode error reach grpc-js; a lenient one swallows it.
        requestDeserialize: (b: Buffer) => {
          if (!lenient) InterceptorEvaluation.decode(b);
          return b;
        },
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      describe: unary(async (req, md) => {
        DescribeRequest.decode(req);
        await guard(md);
        return Buffer.from(InterceptorManifest.encode(manifest(d, audience)).finish());
      }),
      evaluate: unary(async (req, md) => {
        await guard(md);
        let ev: InterceptorEvaluation;
        try {
          ev = InterceptorEvaluation.decode(req);
        } catch {
          if (d.has('wedged-by-garbage')) wedged = true;
          return Buffer.from(InterceptorResult.encode(ok()).finish());
        }
        evaluations++;
        inflight++;
        try {
          if (d.has('racy')) await sleep(20);
          if (d.has('degrades') && evaluations > (options.degradeAfter ?? 30))
            await sleep(options.slowMs ?? 300);
          return Buffer.from(InterceptorResult.encode(answer(d, ev, inflight)).finish());
        } finally {
          inflight--;
        }
      }),
    },
  );
  const port = await new Promise<number>((ok, fail) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? fail(e) : ok(p))),
  );
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.tryShutdown(() => done());
        setTimeout(() => {
          server.forceShutdown();
          done();
        }, 1000).unref();
      }),
  };
}
