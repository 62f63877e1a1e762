// Property: the operation view (CONTRACT section 2) never carries a secret, for any
// request or response of the 25 RPCs, at any depth. Every string inside a secret field
// is generated with a marker; the marker must never appear in the view.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SECRET_MARKER as MARKER, protoJsonArbitrary, runs } from './__fixtures__/arbitrary.js';
import { ROUTES } from './routes.js';
import { schema } from './schema.js';
import { canonicalize, canonicalJson, operationView, parseProtoJson, toProtoJson } from './view.js';

/** What a google.protobuf.Struct can carry: plain objects, arrays, strings, booleans, null, finite numbers. */
function fitsStruct(v: unknown): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(fitsStruct);
  return (
    typeof v === 'object' &&
    Object.getPrototypeOf(v) === Object.prototype &&
    Object.values(v).every(fitsStruct)
  );
}

const TYPES = [...new Set(ROUTES.flatMap((r) => [r.requestType, r.responseType]))];
const SECRET_TYPES = TYPES.filter((t) => schema.message(t).hasSecret);

const typedDocument = (types: string[]) =>
  fc.constantFrom(...types).chain((t) => fc.tuple(fc.constant(t), protoJsonArbitrary(t, { maxDepth: 4 })));

describe('operation view (property)', () => {
  it('knows which RPC messages can carry secrets (the generator below must reach them)', () => {
    expect(SECRET_TYPES).toEqual(
      expect.arrayContaining([
        'openshell.v1.ConfigureProviderRefreshRequest',
        'openshell.v1.RevokeSshSessionRequest',
        'openshell.v1.CreateSshSessionResponse',
        'openshell.v1.CreateProviderRequest',
      ]),
    );
  });

  it('never contains a secret, for arbitrary requests and responses of every RPC', () => {
    let withSecret = 0;
    fc.assert(
      fc.property(typedDocument(TYPES), ([typeName, doc]) => {
        const message = parseProtoJson(typeName, doc);
        if (JSON.stringify(toProtoJson(typeName, message)).includes(MARKER)) withSecret++;
        expect(JSON.stringify(operationView(typeName, message))).not.toContain(MARKER);
      }),
      { numRuns: runs(300) },
    );
    expect(withSecret).toBeGreaterThan(0);
  });

  it('renders views that always fit a Struct (the gateway sends them without another check)', () => {
    fc.assert(
      fc.property(typedDocument(TYPES), ([typeName, doc]) => {
        const c = canonicalJson(typeName, doc);
        expect(fitsStruct(c.json)).toBe(true);
        expect(fitsStruct(operationView(typeName, c.message))).toBe(true);
      }),
      { numRuns: runs(300) },
    );
    expect(fitsStruct({ a: [1, Number.NaN] })).toBe(false);
  });

  it('never contains a secret for messages that hold one, on the gateway path (canonicalJson, then view)', () => {
    let withSecret = 0;
    fc.assert(
      fc.property(typedDocument(SECRET_TYPES), ([typeName, doc]) => {
        const c = canonicalJson(typeName, doc);
        // The full canonical form keeps the secret (the commit needs it) ...
        if (JSON.stringify(c.json).includes(MARKER)) withSecret++;
        // ... the view sent to interceptors never does.
        const view = operationView(typeName, c.message);
        expect(JSON.stringify(view)).not.toContain(MARKER);
        // and the view is itself a valid message of the type (secrets simply absent).
        expect(canonicalize(typeName, view).json).toEqual(view);
      }),
      { numRuns: runs(300) },
    );
    // Most runs must really carry a secret, or the property proves little.
    expect(withSecret).toBeGreaterThan(runs(300) / 4);
  });
});
