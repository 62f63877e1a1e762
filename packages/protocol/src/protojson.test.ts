import { describe, expect, it } from 'vitest';
import { CODECS } from './gen/registry.js';
import { ProtoJson, ProtoJsonError } from './protojson.js';
import { Schema, schema } from './schema.js';
import type { SchemaTable } from './schema-types.js';
import { canonicalize, emptyMessage, operationView, parseProtoJson, toProtoJson } from './view.js';

const errorAt = (fn: () => unknown): ProtoJsonError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtoJsonError) return e;
    throw e;
  }
  throw new Error('expected a ProtoJsonError');
};

describe('schema-built messages match ts-proto', () => {
  for (const [name, codec] of Object.entries(CODECS)) {
    if (name.startsWith('google.protobuf.')) continue;
    it(`${name}: defaults and property names equal ts-proto create()`, () => {
      expect(emptyMessage(name)).toEqual(codec.create());
    });
  }
});

describe('operation view: canonical ProtoJSON', () => {
  it('renders int64 as decimal strings and uint32 as numbers', () => {
    const view = operationView('openshell.v1.UpdateConfigRequest', {
      ...emptyMessage<Record<string, unknown>>('openshell.v1.UpdateConfigRequest'),
      expectedResourceVersion: '18446744073709551615',
    });
    expect(view).toEqual({ expectedResourceVersion: '18446744073709551615' });
    const ep = toProtoJson('openshell.sandbox.v1.NetworkEndpoint', {
      ...emptyMessage<Record<string, unknown>>('openshell.sandbox.v1.NetworkEndpoint'),
      port: 443,
      ports: [80, 8080],
    });
    expect(ep).toEqual({ port: 443, ports: [80, 8080] });
  });

  it('renders enums as value names, and unknown numbers as numbers', () => {
    const base = emptyMessage<Record<string, unknown>>('openshell.v1.SandboxStatus');
    expect(toProtoJson('openshell.v1.SandboxStatus', { ...base, phase: 2 })).toMatchObject({
      phase: 'SANDBOX_PHASE_READY',
    });
    expect(toProtoJson('openshell.v1.SandboxStatus', { ...base, phase: 99 })).toMatchObject({ phase: 99 });
  });

  it('renders bytes as padded base64 and parses standard and URL-safe base64', () => {
    const m = { ...emptyMessage<Record<string, unknown>>('openshell.sandbox.v1.SettingValue') };
    m.bytesValue = Buffer.from([0xfb, 0xff, 0x01]);
    expect(toProtoJson('openshell.sandbox.v1.SettingValue', m)).toEqual({ bytesValue: '+/8B' });
    const parsed = parseProtoJson<{ bytesValue: Buffer }>('openshell.sandbox.v1.SettingValue', {
      bytesValue: '-_8B',
    });
    expect([...parsed.bytesValue]).toEqual([0xfb, 0xff, 0x01]);
    expect(canonicalize('openshell.sandbox.v1.SettingValue', { bytesValue: 'AQ' }).json).toEqual({
      bytesValue: 'AQ==',
    });
  });

  it('omits defaults: zero, empty string, false, empty list and empty map', () => {
    const { json } = canonicalize('openshell.v1.CreateSandboxRequest', {
      name: '',
      labels: {},
      workspace: '',
      spec: { template: { image: '', labels: {} }, providers: [] },
    });
    expect(json).toEqual({ spec: { template: {} } });
  });

  it('keeps presence of proto3 optional fields even at their default', () => {
    const { json } = canonicalize('openshell.v1.SandboxTemplate', { userNamespaces: false });
    expect(json).toEqual({ userNamespaces: false });
    expect(canonicalize('openshell.v1.SandboxTemplate', {}).json).toEqual({});
    expect(canonicalize('openshell.v1.GpuResourceRequirements', { count: 0 }).json).toEqual({ count: 0 });
  });

  it('keeps a oneof member that is set to its default', () => {
    expect(canonicalize('openshell.sandbox.v1.SettingValue', { boolValue: false }).json).toEqual({
      boolValue: false,
    });
    expect(canonicalize('openshell.sandbox.v1.SettingValue', { intValue: '0' }).json).toEqual({
      intValue: '0',
    });
  });

  it('renders float fields as the shortest float32 decimal, and non-finite floats as strings', () => {
    expect(canonicalize('openshell.v1.PolicyChunk', { confidence: 0.1 }).json).toEqual({ confidence: 0.1 });
    expect(canonicalize('openshell.v1.PolicyChunk', { confidence: 'NaN' }).json).toEqual({
      confidence: 'NaN',
    });
    expect(canonicalize('openshell.v1.PolicyChunk', { confidence: '-Infinity' }).json).toEqual({
      confidence: '-Infinity',
    });
  });

  it('passes Struct fields through as plain JSON objects', () => {
    const resources = { cpu: '2', nested: { list: [1, 'a', null, true] } };
    expect(canonicalize('openshell.v1.SandboxTemplate', { resources }).json).toEqual({ resources });
  });

  it('normalises int64 spellings to canonical decimal strings', () => {
    expect(canonicalize('openshell.sandbox.v1.SettingValue', { intValue: 42 }).json).toEqual({
      intValue: '42',
    });
    expect(
      canonicalize('openshell.sandbox.v1.SettingValue', { intValue: '-9223372036854775808' }).json,
    ).toEqual({
      intValue: '-9223372036854775808',
    });
  });

  it('accepts proto field names as well as JSON names', () => {
    expect(canonicalize('openshell.v1.SandboxTemplate', { runtime_class_name: 'gvisor' }).json).toEqual({
      runtimeClassName: 'gvisor',
    });
  });
});

describe('operation view: secrets removed', () => {
  it('removes a top-level secret from a request', () => {
    const msg = parseProtoJson('openshell.v1.RevokeSshSessionRequest', { token: 's3cr3t' });
    expect(operationView('openshell.v1.RevokeSshSessionRequest', msg)).toEqual({});
    expect(toProtoJson('openshell.v1.RevokeSshSessionRequest', msg)).toEqual({ token: 's3cr3t' });
  });

  it('removes a secret map nested in a message, in requests and responses alike', () => {
    const provider = { metadata: { name: 'gh' }, type: 'github', credentials: { GITHUB_TOKEN: 'ghp_x' } };
    const req = parseProtoJson('openshell.v1.CreateProviderRequest', { provider });
    expect(operationView('openshell.v1.CreateProviderRequest', req)).toEqual({
      provider: { metadata: { name: 'gh' }, type: 'github' },
    });
    const res = parseProtoJson('openshell.v1.ProviderResponse', { provider });
    expect(JSON.stringify(operationView('openshell.v1.ProviderResponse', res))).not.toContain('ghp_x');
  });

  it('removes secrets inside list items and map values', () => {
    const table: SchemaTable = {
      messages: {
        't.Outer': {
          fields: [
            { name: 'items', number: 1, jsonName: 'items', kind: 'message', type: 't.Inner', repeated: true },
            {
              name: 'by_key',
              number: 2,
              jsonName: 'byKey',
              kind: 'map',
              mapKey: 'string',
              valueKind: 'message',
              type: 't.Inner',
            },
          ],
        },
        't.Inner': {
          fields: [
            { name: 'name', number: 1, jsonName: 'name', kind: 'scalar', type: 'string' },
            { name: 'token', number: 2, jsonName: 'token', kind: 'scalar', type: 'string', secret: true },
          ],
        },
      },
      enums: {},
      services: {},
    };
    const pj = new ProtoJson(new Schema(table));
    const msg = pj.parse('t.Outer', {
      items: [{ name: 'a', token: 'x1' }, { token: 'x2' }],
      byKey: { k: { name: 'b', token: 'x3' } },
    });
    expect(pj.toJson('t.Outer', msg, { removeSecrets: true })).toEqual({
      items: [{ name: 'a' }, {}],
      byKey: { k: { name: 'b' } },
    });
  });

  it('never shows a secret for any interceptable request type', () => {
    for (const [name, msg] of Object.entries(schema.table.messages)) {
      if (!msg.fields.some((f) => f.secret)) continue;
      const json: Record<string, unknown> = {};
      for (const f of msg.fields) {
        if (f.secret) json[f.jsonName] = f.kind === 'map' ? { k: 'SECRET' } : 'SECRET';
      }
      expect(JSON.stringify(operationView(name, parseProtoJson(name, json))), name).not.toContain('SECRET');
    }
  });
});

describe('strict parse', () => {
  it('rejects unknown field names with the path', () => {
    const e = errorAt(() => parseProtoJson('openshell.v1.CreateSandboxRequest', { spec: { templat: {} } }));
    expect(e.path).toBe('/spec/templat');
    expect(e.message).toContain('unknown field "templat"');
  });

  it('rejects type mismatches with the path', () => {
    expect(errorAt(() => parseProtoJson('openshell.v1.CreateSandboxRequest', { name: 5 })).path).toBe(
      '/name',
    );
    expect(
      errorAt(() => parseProtoJson('openshell.v1.CreateSandboxRequest', { labels: { a: 1 } })).message,
    ).toContain('/labels/a: expected a string');
    expect(
      errorAt(() => parseProtoJson('openshell.v1.SandboxTemplate', { userNamespaces: 'true' })).path,
    ).toBe('/userNamespaces');
    expect(errorAt(() => parseProtoJson('openshell.v1.CreateSandboxRequest', { spec: [] })).path).toBe(
      '/spec',
    );
    expect(errorAt(() => parseProtoJson('openshell.v1.SandboxTemplate', { resources: 'big' })).path).toBe(
      '/resources',
    );
  });

  it('rejects two members of one oneof', () => {
    const e = errorAt(() =>
      parseProtoJson('openshell.sandbox.v1.SettingValue', { stringValue: 'a', boolValue: true }),
    );
    expect(e.message).toContain('oneof "value"');
    expect(e.path).toBe('/boolValue');
  });

  it('treats null as unset, so a null oneof member does not count', () => {
    expect(
      canonicalize('openshell.sandbox.v1.SettingValue', { stringValue: null, boolValue: true }).json,
    ).toEqual({
      boolValue: true,
    });
  });

  it('rejects the same field under its JSON and proto names', () => {
    expect(
      errorAt(() =>
        parseProtoJson('openshell.v1.SandboxTemplate', { runtimeClassName: 'a', runtime_class_name: 'b' }),
      ).message,
    ).toContain('given twice');
  });

  it('rejects out-of-range and non-integral numbers', () => {
    expect(errorAt(() => parseProtoJson('openshell.sandbox.v1.NetworkEndpoint', { port: -1 })).path).toBe(
      '/port',
    );
    expect(
      errorAt(() => parseProtoJson('openshell.sandbox.v1.NetworkEndpoint', { port: 2 ** 32 })).path,
    ).toBe('/port');
    expect(errorAt(() => parseProtoJson('openshell.sandbox.v1.NetworkEndpoint', { port: 1.5 })).path).toBe(
      '/port',
    );
    expect(
      errorAt(() => parseProtoJson('openshell.sandbox.v1.SettingValue', { intValue: '9223372036854775808' }))
        .path,
    ).toBe('/intValue');
    expect(
      errorAt(() => parseProtoJson('openshell.sandbox.v1.SettingValue', { intValue: 2 ** 60 })).message,
    ).toContain('as strings');
    expect(errorAt(() => parseProtoJson('openshell.v1.PolicyChunk', { confidence: 1e39 })).path).toBe(
      '/confidence',
    );
  });

  it('rejects unknown enum names and bad base64', () => {
    expect(
      errorAt(() => parseProtoJson('openshell.v1.SandboxStatus', { phase: 'RUNNING' })).message,
    ).toContain('not a value of enum openshell.v1.SandboxPhase');
    expect(errorAt(() => parseProtoJson('openshell.sandbox.v1.SettingValue', { bytesValue: 'a' })).path).toBe(
      '/bytesValue',
    );
  });

  it('rejects nulls inside lists and maps, and names the index', () => {
    expect(
      errorAt(() => parseProtoJson('openshell.v1.CreateSandboxRequest', { spec: { providers: ['a', null] } }))
        .path,
    ).toBe('/spec/providers/1');
    expect(
      errorAt(() => parseProtoJson('openshell.v1.CreateSandboxRequest', { labels: { a: null } })).path,
    ).toBe('/labels/a');
  });

  it('escapes JSON Pointer tokens in error paths', () => {
    expect(
      errorAt(() => parseProtoJson('openshell.v1.CreateSandboxRequest', { labels: { 'a/b~c': 1 } })).path,
    ).toBe('/labels/a~1b~0c');
  });

  it('parses numbers given as strings for 32-bit fields', () => {
    expect(canonicalize('openshell.sandbox.v1.NetworkEndpoint', { port: '443' }).json).toEqual({ port: 443 });
  });
});
