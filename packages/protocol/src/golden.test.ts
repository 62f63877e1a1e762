import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJson, SHARED_SPEC, sharedSpecPresent, TEST_DATA } from './spec-data.test-util.js';
import { canonicalize, codecFor, parseProtoJson, toProtoJson } from './view.js';

interface Vector {
  type: string;
  json: Record<string, unknown>;
  hex: string;
}
const vectors = readJson<Vector[]>(join(TEST_DATA, 'gateway-interceptor-v1.json'));

describe('golden vectors', () => {
  it('covers every interceptor message kind the spec ships', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(10);
  });

  for (const [i, v] of vectors.entries()) {
    describe(`#${i} ${v.type}`, () => {
      const codec = codecFor(v.type);
      const decoded = () => codec.decode(Buffer.from(v.hex, 'hex'));

      // The vectors spell some defaults out (`"allowed": false`, `"principal": {}`), and one
      // encodes allowed=false on the wire, so equality is semantic: both sides as full messages.
      it('decodes from hex to the message its JSON describes', () => {
        expect(decoded()).toEqual(parseProtoJson(v.type, v.json));
      });

      it('renders the decoded message as the vector JSON, defaults aside', () => {
        expect(toProtoJson(v.type, decoded())).toEqual(toProtoJson(v.type, parseProtoJson(v.type, v.json)));
        expect(toProtoJson(v.type, decoded())).toEqual(withoutDefaultSpellings(v.json));
      });

      it('ts-proto JSON methods agree with the schema-driven conversion', () => {
        expect(codec.toJSON(decoded())).toEqual(toProtoJson(v.type, decoded()));
      });

      it('round-trips JSON → strict parse → encode → decode → JSON', () => {
        const { json, bytes } = canonicalize(v.type, v.json);
        expect(codec.decode(bytes)).toEqual(decoded());
        expect(canonicalize(v.type, json).json).toEqual(json);
      });
    });
  }
});

/** The vector JSON with the default spellings the vectors use at message level removed. */
function withoutDefaultSpellings(json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(json)) {
    if (
      x === false ||
      (typeof x === 'object' && x !== null && !Array.isArray(x) && Object.keys(x).length === 0)
    ) {
      if (k === 'allowed' || k === 'principal') continue;
    }
    out[k] = x;
  }
  return out;
}

describe.runIf(sharedSpecPresent)('spec copies', () => {
  it('test-data matches ../shared/spec', () => {
    expect(readJson(join(TEST_DATA, 'gateway-interceptor-v1.json'))).toEqual(
      readJson(join(SHARED_SPEC, 'golden', 'gateway-interceptor-v1.json')),
    );
    expect(readJson(join(TEST_DATA, 'openshell-wire-inventory.json'))).toEqual(
      readJson(join(SHARED_SPEC, 'openshell-wire-inventory.json')),
    );
  });
});
