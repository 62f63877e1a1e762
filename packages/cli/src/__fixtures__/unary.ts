import type * as grpc from '@grpc/grpc-js';

/** A callback-style grpc-js unary call as a promise: `await unary((cb) => client.describe({}, cb))`. */
export function unary<T>(fn: (cb: (err: grpc.ServiceError | null, r: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, r) => (err ? reject(err) : resolve(r))));
}
