import {
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';

// grpc.health.v1, with a hand-written codec: the two messages have one field each
// (`string service = 1`, `ServingStatus status = 1`), so a generated codec and a
// proto file would be more machinery than the encoding itself.

export enum ServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  /** Watch only: the service name is not known (yet). */
  SERVICE_UNKNOWN = 3,
}

export interface HealthCheckRequest {
  service: string;
}

export interface HealthCheckResponse {
  status: ServingStatus;
}

function writeVarint(out: number[], value: number): void {
  let v = value >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

function readVarint(buf: Buffer, at: { pos: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (at.pos >= buf.length) throw new Error('truncated varint');
    const b = buf[at.pos++]!;
    if (shift < 32) result |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return result >>> 0;
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

/** Walk the fields of a message, calling `onField` for field 1 and skipping the rest. */
function readField1(buf: Buffer, wanted: 0 | 2): number | Buffer | undefined {
  const at = { pos: 0 };
  let found: number | Buffer | undefined;
  while (at.pos < buf.length) {
    const tag = readVarint(buf, at);
    const field = tag >>> 3;
    const wire = tag & 7;
    let value: number | Buffer;
    switch (wire) {
      case 0:
        value = readVarint(buf, at);
        break;
      case 1:
        at.pos += 8;
        value = 0;
        break;
      case 2: {
        const len = readVarint(buf, at);
        if (at.pos + len > buf.length) throw new Error('truncated field');
        value = buf.subarray(at.pos, at.pos + len);
        at.pos += len;
        break;
      }
      case 5:
        at.pos += 4;
        value = 0;
        break;
      default:
        throw new Error(`unsupported wire type ${wire}`);
    }
    if (field === 1 && wire === wanted) found = value; // last one wins, as protobuf says
  }
  if (at.pos > buf.length) throw new Error('truncated message');
  return found;
}

export function encodeHealthCheckRequest(m: HealthCheckRequest): Buffer {
  if (m.service === '') return Buffer.alloc(0);
  const bytes = Buffer.from(m.service, 'utf8');
  const out: number[] = [0x0a];
  writeVarint(out, bytes.length);
  return Buffer.concat([Buffer.from(out), bytes]);
}

export function decodeHealthCheckRequest(buf: Buffer): HealthCheckRequest {
  const v = readField1(buf, 2);
  return { service: v instanceof Buffer ? v.toString('utf8') : '' };
}

export function encodeHealthCheckResponse(m: HealthCheckResponse): Buffer {
  if (m.status === 0) return Buffer.alloc(0);
  const out: number[] = [0x08];
  writeVarint(out, m.status);
  return Buffer.from(out);
}

export function decodeHealthCheckResponse(buf: Buffer): HealthCheckResponse {
  const v = readField1(buf, 0);
  return { status: typeof v === 'number' ? v : ServingStatus.UNKNOWN };
}

const codec = {
  requestSerialize: encodeHealthCheckRequest,
  requestDeserialize: decodeHealthCheckRequest,
  responseSerialize: encodeHealthCheckResponse,
  responseDeserialize: decodeHealthCheckResponse,
};

export const HealthService = {
  check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    originalName: 'Check',
    ...codec,
  },
  watch: {
    path: '/grpc.health.v1.Health/Watch',
    requestStream: false,
    responseStream: true,
    originalName: 'Watch',
    ...codec,
  },
} satisfies ServiceDefinition;

/** Serving status per service name (`''` = the whole server) with Check and Watch handlers. */
export class HealthState {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<{
    service: string;
    call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;
  }>();
  private closed = false;

  set(service: string, s: ServingStatus): void {
    if (this.statuses.get(service) === s) return;
    this.statuses.set(service, s);
    for (const w of this.watchers) if (w.service === service) w.call.write({ status: s });
  }

  /** Set every known service (shutdown: NOT_SERVING). */
  setAll(s: ServingStatus): void {
    for (const name of [...this.statuses.keys()]) this.set(name, s);
  }

  /** End every Watch stream, so a graceful shutdown is not held open by watchers. */
  endWatches(): void {
    this.closed = true;
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  implementation(): UntypedServiceImplementation {
    const check: handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, callback) => {
      const s = this.statuses.get(call.request.service);
      if (s === undefined)
        callback({ code: status.NOT_FOUND, details: `unknown service '${call.request.service}'` });
      else callback(null, { status: s });
    };
    const watch: handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse> = (call) => {
      if (this.closed) {
        call.write({ status: ServingStatus.NOT_SERVING });
        call.end();
        return;
      }
      const w = { service: call.request.service, call };
      this.watchers.add(w);
      call.write({ status: this.statuses.get(w.service) ?? ServingStatus.SERVICE_UNKNOWN });
      call.on('cancelled', () => this.watchers.delete(w));
    };
    return { check, watch } as UntypedServiceImplementation;
  }
}
