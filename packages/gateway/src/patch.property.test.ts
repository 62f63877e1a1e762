// Property: patch application through the runtime's real patch step (CONTRACT 4.3) is
// all or nothing. An in-process transport answers a modify_operation binding with an
// arbitrary patch list (sent through the wire codec); after intercept() the request is
// either exactly the original or the original with the WHOLE list applied, secrets are
// never touched, and the validate binding sees the view of exactly that request.
import {
  canonicalize,
  InterceptorManifest,
  InterceptorResult,
  type JsonObject,
  type JsonPatch,
  type JsonValue,
  operationView,
  parseJsonPointer,
  pointerTouchesSecret,
  schema,
} from '@openshell-interceptors/protocol';
import fc from 'fast-check';
import fjp, { type Operation } from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  jsonKey,
  jsonValue,
  DEFAULT_SECRET_MARKER as MARKER,
  protoJsonArbitrary,
  runs,
} from '../../protocol/src/__fixtures__/arbitrary.js';
import { captureLogs, configFor } from './__fixtures__/harness.js';
import { createGateway, type Gateway } from './gateway.js';
import type { InterceptorTransport } from './transport.js';

const METHODS = {
  CreateSandbox: 'openshell.v1.CreateSandboxRequest',
  CreateProvider: 'openshell.v1.CreateProviderRequest',
  UpdateConfig: 'openshell.v1.UpdateConfigRequest',
} as const;
type Method = keyof typeof METHODS;

/** What the scripted interceptor answers next, and what the validate binding saw. */
let nextPatches: JsonPatch[] = [];
let seenByValidate: JsonObject | undefined;

const manifest: InterceptorManifest = InterceptorManifest.fromPartial({
  name: 'fuzz',
  bindings: Object.keys(METHODS).flatMap((m) => [
    { id: `patch-${m}`, selector: { rpc: `openshell.v1.OpenShell/${m}` }, phases: [2] },
    { id: `check-${m}`, selector: { rpc: `openshell.v1.OpenShell/${m}` }, phases: [3] },
  ]),
});

const transport: InterceptorTransport = {
  describe: async () => manifest,
  async evaluate(ev) {
    const validate = ev.validate?.proposedOperation;
    if (validate) seenByValidate = validate as JsonObject;
    const result: InterceptorResult = {
      allowed: true,
      reason: '',
      statusCode: '',
      patches: ev.modifyOperation ? nextPatches : [],
      logAnnotations: {},
    };
    // Through the wire codec, as a real interceptor's answer would arrive.
    const bytes = InterceptorResult.encode(result).finish();
    return { result: InterceptorResult.decode(bytes), encodedBytes: bytes.length };
  },
  snapshotProviderProfiles: async () => {
    throw new Error('unused');
  },
  close: async () => {},
};

let gw: Gateway;
beforeAll(async () => {
  gw = await createGateway(
    configFor([
      {
        name: 'fuzz',
        grpc_endpoint: 'http://in-process.invalid:1',
        failure_policy: 'fail_open',
        max_patches: 64,
        breaker: { enabled: false },
      },
    ]),
    { transport: () => transport, logger: captureLogs().logger },
  );
});
afterAll(() => gw.close());

/** Every pointer to an existing value, and to the places one could be added. */
function pointers(v: JsonValue, at = '', out: string[] = []): string[] {
  out.push(at);
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      pointers(x, `${at}/${i}`, out);
    });
    out.push(`${at}/-`, `${at}/${v.length}`);
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v))
      pointers(x, `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, out);
  }
  return out;
}

/** Field names a patch may plausibly target under an object: the type's fields, or any key. */
const FIELD_NAMES = [
  ...new Set(
    Object.values(METHODS).flatMap((t) =>
      [
        t,
        ...schema
          .message(t)
          .fields.filter((f) => f.kind === 'message')
          .map((f) => f.type),
      ]
        .filter((n) => schema.hasMessage(n))
        .flatMap((n) => schema.message(n).fields.map((f) => f.jsonName)),
    ),
  ),
];

const OPS = ['add', 'remove', 'replace', 'move', 'copy', 'test'] as const;

function patchList(doc: JsonObject): fc.Arbitrary<JsonPatch[]> {
  const existing = pointers(doc);
  const path = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...existing) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom(...existing), fc.oneof(fc.constantFrom(...FIELD_NAMES), jsonKey))
        .map(([p, k]) => `${p}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`),
    },
    { weight: 1, arbitrary: fc.constantFrom('', '/', 'name', '/~2', '/a~', '//', '/-', '/labels/-') },
  );
  const value = fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 8 }) },
    { weight: 2, arbitrary: jsonValue },
    { weight: 1, arbitrary: fc.constantFrom<JsonValue>({}, [], 0, '0', true, null, { a: 'b' }, ['x']) },
  );
  const patch = fc
    .record({
      op: fc.oneof(
        { weight: 9, arbitrary: fc.constantFrom(...OPS) },
        { weight: 1, arbitrary: fc.constantFrom('', 'merge', 'ADD') },
      ),
      path,
      value: fc.option(value, { nil: undefined }),
      from: fc.option(path, { nil: undefined }),
    })
    .map((p): JsonPatch => ({ op: p.op, path: p.path, value: p.value, from: p.from ?? '' }));
  return fc.array(fc.oneof(patch, ...wellFormed(doc)), { minLength: 1, maxLength: 5 });
}

/** Every (pointer, value) of a document below the root. */
function leaves(v: JsonValue, at = '', out: [string, JsonValue][] = []): [string, JsonValue][] {
  if (at !== '') out.push([at, v]);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) leaves(v[i] as JsonValue, `${at}/${i}`, out);
  } else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v))
      leaves(x, `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, out);
  return out;
}

/** Patches that stand a fair chance of applying: type-preserving edits of what is there. */
function wellFormed(doc: JsonObject): fc.Arbitrary<JsonPatch>[] {
  const all = leaves(doc);
  const strings = all.filter(([, v]) => typeof v === 'string');
  const objects = [['', doc] as [string, JsonValue], ...all].filter(
    ([, v]) => v !== null && typeof v === 'object' && !Array.isArray(v),
  );
  const wire = (op: string, path: string, value?: JsonValue, from = ''): JsonPatch => ({
    op,
    path,
    value,
    from,
  });
  const out: fc.Arbitrary<JsonPatch>[] = [
    fc
      .constantFrom(...objects)
      .chain(([p]) =>
        fc
          .tuple(fc.constantFrom('name', 'workspace', 'team', 'x'), fc.string({ maxLength: 6 }))
          .map(([k, v]) => wire('add', `${p}/${k}`, v)),
      ),
  ];
  if (all.length > 0) {
    out.push(fc.constantFrom(...all).map(([p, v]) => wire('test', p, v)));
    out.push(fc.constantFrom(...all).map(([p]) => wire('remove', p)));
  }
  if (strings.length > 0) {
    out.push(
      fc
        .tuple(fc.constantFrom(...strings), fc.string({ maxLength: 8 }))
        .map(([[p], v]) => wire('replace', p, v)),
    );
    out.push(
      fc
        .tuple(fc.constantFrom(...strings), fc.constantFrom(...strings))
        .map(([[from], [to]]) => wire('copy', to, undefined, from)),
    );
  }
  return out;
}

const scenario = fc
  .constantFrom(...(Object.keys(METHODS) as Method[]))
  .chain((method) => fc.tuple(fc.constant(method), protoJsonArbitrary(METHODS[method], { maxDepth: 2 })))
  .chain(([method, raw]) => {
    const original = canonicalize(METHODS[method], raw).json;
    return fc.tuple(fc.constant(method), fc.constant(original), patchList(original));
  });

/**
 * The whole list applied by the contract's rules, computed here from the spec:
 * valid pointers, none touching a secret, RFC 6902 in order, then a strict re-parse.
 * Undefined when any of it fails.
 */
function appliedWhole(
  typeName: string,
  original: JsonObject,
  patches: readonly JsonPatch[],
): JsonObject | undefined {
  try {
    for (const p of patches) {
      const ptrs = [p.path, ...(p.op === 'move' || p.op === 'copy' || p.from !== '' ? [p.from] : [])];
      for (const ptr of ptrs) {
        parseJsonPointer(ptr);
        if (pointerTouchesSecret(schema, typeName, ptr)) return undefined;
      }
    }
    const ops = patches.map((p) => ({
      op: p.op,
      path: p.path,
      ...(p.value !== undefined ? { value: structuredClone(p.value) } : {}),
      ...(p.from !== '' ? { from: p.from } : {}),
    })) as unknown as Operation[];
    const doc = fjp.applyPatch(structuredClone(original), ops, true, true, true).newDocument;
    return canonicalize(typeName, doc).json;
  } catch {
    return undefined;
  }
}

/** Every secret-marked string in a document, in order. */
const secretsIn = (doc: JsonObject) => JSON.stringify(doc).match(new RegExp(`${MARKER}[^"]*`, 'g')) ?? [];

describe('patch application (property)', () => {
  it('is all or nothing for arbitrary patch lists, never touches a secret, and validate sees exactly the result', async () => {
    let applied = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ([method, original, patches]) => {
        const typeName = METHODS[method];
        nextPatches = patches;
        seenByValidate = undefined;
        const out = await gw.intercept({ method, request: structuredClone(original) });
        const record = out.evaluations.find((e) => e.phase === 'modify_operation');
        expect(out.outcome).toBe('allowed');
        const whole = appliedWhole(typeName, original, patches);
        if (record?.applied) {
          applied++;
          expect(record.decision).toBe('allow');
          expect(whole).toBeDefined();
          expect(out.request).toEqual(whole);
        } else {
          refused++;
          expect(record?.decision).toBe('error');
          expect(record?.error).toBeTruthy();
          // Nothing of the list stays: the operation is exactly what it was.
          expect(out.request).toEqual(original);
          // ... and the refusal was right: the whole list could not apply.
          expect(whole).toBeUndefined();
        }
        expect(secretsIn(out.request)).toEqual(secretsIn(original));
        expect(seenByValidate).toEqual(operationView(typeName, canonicalize(typeName, out.request).message));
      }),
      { numRuns: runs(300) },
    );
    // Both sides of the property must be exercised.
    expect(applied).toBeGreaterThan(runs(300) / 20);
    expect(refused).toBeGreaterThan(runs(300) / 20);
  });
});
