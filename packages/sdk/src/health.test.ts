import { describe, expect, it } from 'vitest';
import {
  decodeHealthCheckRequest,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse,
  ServingStatus,
} from './health.js';

describe('grpc.health.v1 codec', () => {
  it('round-trips requests and responses in the protobuf encoding', () => {
    expect(encodeHealthCheckRequest({ service: 'a.B' })).toEqual(Buffer.from([0x0a, 3, 0x61, 0x2e, 0x42]));
    expect(decodeHealthCheckRequest(encodeHealthCheckRequest({ service: 'x'.repeat(300) }))).toEqual({
      service: 'x'.repeat(300),
    });
    expect(encodeHealthCheckResponse({ status: ServingStatus.NOT_SERVING })).toEqual(Buffer.from([0x08, 2]));
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 1]))).toEqual({ status: ServingStatus.SERVING });
    expect(decodeHealthCheckRequest(Buffer.alloc(0))).toEqual({ service: '' });
  });

  it('skips unknown fields and refuses truncated input', () => {
    const withUnknown = Buffer.from([0x10, 0x05, 0x1a, 0x01, 0x7a, 0x0a, 0x01, 0x73, 0x25, 1, 2, 3, 4]);
    expect(decodeHealthCheckRequest(withUnknown)).toEqual({ service: 's' });
    expect(() => decodeHealthCheckRequest(Buffer.from([0x0a, 5, 0x61]))).toThrow(/truncated/);
  });
});
