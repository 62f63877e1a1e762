import * as grpc from '@grpc/grpc-js';
import {
  GatewayInterceptorClient,
  type InterceptorEvaluation,
  type InterceptorManifest,
  type InterceptorResult,
  type ProviderProfileSnapshot,
} from '@openshell-interceptors/protocol';
import { type HealthCheckResponse, HealthService } from '../health.js';

export interface CallOptions {
  readonly token?: string;
  readonly metadata?: grpc.Metadata;
  readonly deadlineMs?: number;
}

function metadataOf(o: CallOptions): grpc.Metadata {
  const md = o.metadata ?? new grpc.Metadata();
  if (o.token !== undefined) md.set('authorization', `Bearer ${o.token}`);
  return md;
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

function unary<Req, Res>(fn: Unary<Req, Res>, req: Req, o: CallOptions): Promise<Res> {
  return new Promise((resolve, reject) => {
    const opts = o.deadlineMs !== undefined ? { deadline: Date.now() + o.deadlineMs } : {};
    fn(req, metadataOf(o), opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** A promise-returning GatewayInterceptor client (tests only). */
export function interceptorClient(address: string, creds = grpc.credentials.createInsecure(), options = {}) {
  const c = new GatewayInterceptorClient(address, creds, options);
  return {
    raw: c,
    describe: (o: CallOptions = {}) =>
      unary<object, InterceptorManifest>(c.describe.bind(c) as Unary<object, InterceptorManifest>, {}, o),
    evaluate: (ev: InterceptorEvaluation, o: CallOptions = {}) =>
      unary<InterceptorEvaluation, InterceptorResult>(
        c.evaluate.bind(c) as Unary<InterceptorEvaluation, InterceptorResult>,
        ev,
        o,
      ),
    snapshot: (o: CallOptions = {}) =>
      unary<object, ProviderProfileSnapshot>(
        c.snapshotProviderProfiles.bind(c) as Unary<object, ProviderProfileSnapshot>,
        {},
        o,
      ),
    close: () => c.close(),
  };
}

const HealthClient = grpc.makeGenericClientConstructor(HealthService, 'grpc.health.v1.Health');

export function healthClient(address: string) {
  const c = new HealthClient(address, grpc.credentials.createInsecure());
  return {
    check: (service: string) =>
      new Promise<HealthCheckResponse>((resolve, reject) => {
        (c as unknown as { check: Unary<{ service: string }, HealthCheckResponse> }).check(
          { service },
          new grpc.Metadata(),
          {},
          (err, res) => (err ? reject(err) : resolve(res)),
        );
      }),
    watch: (service: string) =>
      (
        c as unknown as {
          watch: (req: { service: string }) => grpc.ClientReadableStream<HealthCheckResponse>;
        }
      ).watch({
        service,
      }),
    close: () => c.close(),
  };
}

/** The status a call failed with. */
export async function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  const r = await p.then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  if (!r) throw new Error('expected the call to fail');
  return r;
}
