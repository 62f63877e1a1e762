// The fast Evaluate codec must be indistinguishable from the generated one: the same bytes
// out of encode, the same value (or the same error) out of decode, for any input.
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonValue, runs } from './__fixtures__/arbitrary.js';
import { decodeEvaluation, encodeEvaluation, encodeResult } from './evaluation-codec.js';
import {
  InterceptorEvaluation,
  InterceptorResult,
} from './gen/openshell/gateway_interceptor/v1/gateway_interceptor.js';

/** Strings of any UTF-16, lone surrogates included. */
const anyString = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }));

/** JSON plus what only reaches an encoder by mistake: undefined, -0, NaN, ±Infinity, odd keys. */
const looseValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    jsonValue,
    fc.constantFrom(undefined, -0, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 1e-310),
    anyString,
    fc.array(tie('v'), { maxLength: 3 }),
    fc
      .array(fc.tuple(fc.oneof(anyString, fc.constantFrom('__proto__', '0', '10', '')), tie('v')), {
        maxLength: 3,
      })
      .map((entries) => {
        const o: Record<string, unknown> = {};
        for (const [k, v] of entries)
          Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
        return o;
      }),
  ),
})).v;

const struct = fc.dictionary(anyString, looseValue, { maxKeys: 4 });
const maybeStruct = fc.option(struct, { nil: undefined });

const evaluation: fc.Arbitrary<InterceptorEvaluation> = fc
  .record({
    interceptorName: anyString,
    bindingId: anyString,
    service: anyString,
    method: anyString,
    principal: fc.dictionary(anyString, anyString, { maxKeys: 3 }),
    modifyOperation: fc.option(fc.record({ proposedOperation: maybeStruct }), { nil: undefined }),
    validate: fc.option(fc.record({ proposedOperation: maybeStruct, currentState: maybeStruct }), {
      nil: undefined,
    }),
    postCommit: fc.option(fc.record({ committedResponse: maybeStruct }), { nil: undefined }),
  })
  .map((ev) => ev as InterceptorEvaluation);

/** Map keys as a handler may set them, "__proto__" as an own key included. */
const annotations = fc
  .array(fc.tuple(fc.oneof(anyString, fc.constantFrom('__proto__', '')), anyString), { maxLength: 3 })
  .map((entries) => {
    const o: Record<string, string> = {};
    for (const [k, v] of entries)
      Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    return o;
  });

const result: fc.Arbitrary<InterceptorResult> = fc.record({
  allowed: fc.boolean(),
  reason: anyString,
  statusCode: anyString,
  patches: fc.array(
    fc.record({
      op: fc.oneof(fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', ''), anyString),
      path: anyString,
      value: looseValue,
      from: anyString,
    }),
    { maxLength: 4 },
  ),
  logAnnotations: annotations,
});

const generatedBytes = (ev: InterceptorEvaluation) => Buffer.from(InterceptorEvaluation.encode(ev).finish());

/** The outcome of a decoder: its value, or the message of what it threw. */
function outcome(decode: (b: Uint8Array) => unknown, bytes: Uint8Array): { value?: unknown; error?: string } {
  try {
    return { value: decode(bytes) };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function sameDecode(bytes: Uint8Array): void {
  const ours = outcome(decodeEvaluation, bytes);
  const theirs = outcome((b) => InterceptorEvaluation.decode(b), bytes);
  expect(ours).toEqual(theirs);
}

/** Ours writes the generated encoder's bytes, or throws what it throws. */
function sameEncoding(ours: () => Buffer, generated: () => Uint8Array): void {
  let theirs: Buffer;
  try {
    theirs = Buffer.from(generated());
  } catch (e) {
    expect(ours).toThrow((e as Error).message);
    return;
  }
  expect(ours().equals(theirs)).toBe(true);
}

/** Hand-built wire bytes. */
const w = () => new BinaryWriter();
const bytesOf = (b: BinaryWriter) => b.finish();

describe('evaluation codec (property)', () => {
  it('encodes exactly the bytes the generated encoder writes', () => {
    fc.assert(
      fc.property(evaluation, (ev) =>
        sameEncoding(
          () => encodeEvaluation(ev),
          () => generatedBytes(ev),
        ),
      ),
      { numRuns: runs(1000) },
    );
  });

  it('encodes results exactly as the generated encoder does', () => {
    fc.assert(
      fc.property(result, (r) =>
        sameEncoding(
          () => encodeResult(r),
          () => InterceptorResult.encode(r).finish(),
        ),
      ),
      { numRuns: runs(1000) },
    );
  });

  it('decodes any valid encoding to what the generated decoder returns', () => {
    fc.assert(
      fc.property(evaluation, (ev) => sameDecode(generatedBytes(ev))),
      { numRuns: runs(1000) },
    );
  });

  it('decodes damaged and arbitrary bytes exactly like the generated decoder (value or error)', () => {
    const damaged = fc
      .tuple(
        evaluation.map(generatedBytes),
        fc.array(
          fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert')),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
      )
      .map(([b, edits]) => {
        let out = Buffer.from(b);
        for (const [at, byte, kind] of edits) {
          const i = out.length === 0 ? 0 : at % out.length;
          if (kind === 'set' && out.length > 0) out[i] = byte;
          else if (kind === 'cut') out = out.subarray(0, i);
          else out = Buffer.concat([out.subarray(0, i), Buffer.from([byte]), out.subarray(i)]);
        }
        return out;
      });
    fc.assert(
      fc.property(fc.oneof(damaged, fc.uint8Array({ maxLength: 64 })), (bytes) => sameDecode(bytes)),
      { numRuns: runs(3000) },
    );
  });

  describe('edge cases of the generated rules', () => {
    const value = (build: (v: BinaryWriter) => void) => {
      const v = w();
      build(v);
      return v.finish();
    };
    const inStruct = (key: string, valueBytes: Uint8Array) => {
      const entry = w().uint32(10).string(key).uint32(18).bytes(valueBytes).finish();
      const struct = w().uint32(10).bytes(entry).finish();
      const phase = w().uint32(10).bytes(struct).finish();
      return bytesOf(w().uint32(50).bytes(phase));
    };

    it.each([
      [
        'a Value with several kinds (string wins over number)',
        value((v) => v.uint32(17).double(1).uint32(26).string('s')),
      ],
      ['a Value with null and bool (bool wins)', value((v) => v.uint32(8).int32(0).uint32(32).bool(false))],
      ['an empty Value (dropped from the Struct)', new Uint8Array()],
      ['a Value field with the wrong wire type', value((v) => v.uint32(10).string('x').uint32(17).double(2))],
      [
        'a Value ended early by tag 0',
        value((v) => v.uint32(17).double(3).uint32(0).uint32(26).string('late')),
      ],
      [
        'an unknown field inside a Value',
        value((v) =>
          v
            .uint32(7 << 3)
            .uint32(5)
            .uint32(26)
            .string('kept'),
        ),
      ],
    ])('%s', (_, valueBytes) => {
      sameDecode(inStruct('k', valueBytes));
    });

    it('counts a map entry from after its length (a case fuzzing found: an entry whose last tag runs past its end)', () => {
      const bytes = Buffer.from(
        '0a05f0908080001208f0908080f09080801a02202022032020202a180a08f0908080f0908080120b0cf0908080f0908080f289bc8032020a00',
        'hex',
      );
      sameDecode(bytes);
      expect(() => decodeEvaluation(bytes)).toThrow('premature EOF');
    });

    it.each([
      ['an overlong NUL', 'c080'],
      ['a UTF-8 encoded surrogate', 'eda080'],
      ['a truncated 4-byte sequence', 'f09080'],
      ['a stray continuation byte', '61806162'],
      ['a byte-order mark (kept as text)', 'efbbbf61'],
      ['a real U+FFFD', 'efbfbd'],
    ])('decodes strings with %s like the generated decoder', (_, hex) => {
      const text = Buffer.from(hex, 'hex');
      const bytes = inStruct(
        'k',
        value((v) => v.uint32(26).bytes(text)),
      );
      sameDecode(bytes);
      sameDecode(bytesOf(w().uint32(10).bytes(text)));
    });

    it('keeps an empty Value inside a list as undefined, like the generated decoder', () => {
      const list = w()
        .uint32(10)
        .bytes(new Uint8Array())
        .uint32(10)
        .bytes(value((v) => v.uint32(32).bool(true)));
      const bytes = inStruct(
        'l',
        value((v) => v.uint32(50).bytes(list.finish())),
      );
      sameDecode(bytes);
      expect(decodeEvaluation(bytes).modifyOperation?.proposedOperation).toEqual({ l: [undefined, true] });
    });

    it('drops a "__proto__" key on decode, like the generated decoder', () => {
      const bytes = inStruct(
        '__proto__',
        value((v) => v.uint32(26).string('x')),
      );
      sameDecode(bytes);
      expect(Object.keys(decodeEvaluation(bytes).modifyOperation?.proposedOperation ?? {})).toEqual([]);
    });

    it('throws at the same nesting depth as the generated decoder', () => {
      for (const levels of [30, 31, 32, 33, 40]) {
        let inner = value((v) => v.uint32(26).string('leaf'));
        for (let i = 0; i < levels; i++) {
          const entry = w().uint32(10).string('n').uint32(18).bytes(inner).finish();
          const struct = w().uint32(10).bytes(entry).finish();
          inner = value((v) => v.uint32(42).bytes(struct));
        }
        sameDecode(inStruct('root', inner));
      }
      expect(() => decodeEvaluation(inStruct('root', deep(40)))).toThrow('recursion limit');
    });

    it('keeps the last of repeated phase and name fields, and every principal entry', () => {
      const principal = (k: string, v: string) => w().uint32(10).string(k).uint32(18).string(v).finish();
      const bytes = bytesOf(
        w()
          .uint32(10)
          .string('first')
          .uint32(10)
          .string('second')
          .uint32(42)
          .bytes(principal('kind', 'user'))
          .uint32(42)
          .bytes(principal('kind', 'sandbox'))
          .uint32(66)
          .bytes(new Uint8Array())
          .uint32(58)
          .bytes(new Uint8Array()),
      );
      sameDecode(bytes);
      expect(decodeEvaluation(bytes)).toMatchObject({
        interceptorName: 'second',
        principal: { kind: 'sandbox' },
      });
    });

    function deep(levels: number): Uint8Array {
      let inner = value((v) => v.uint32(26).string('leaf'));
      for (let i = 0; i < levels; i++) {
        const entry = w().uint32(10).string('n').uint32(18).bytes(inner).finish();
        inner = value((v) => v.uint32(42).bytes(w().uint32(10).bytes(entry).finish()));
      }
      return inner;
    }
  });
});
