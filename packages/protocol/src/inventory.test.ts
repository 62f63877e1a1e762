import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCHEMA } from './gen/schema.js';
import type { FieldSchema } from './schema-types.js';
import { readJson, TEST_DATA } from './spec-data.test-util.js';

interface InvField {
  name: string;
  number: number;
  type: string;
  jsonName: string;
  repeated?: boolean;
  oneof?: string;
  optional?: boolean;
  secret?: boolean;
}
interface Inventory {
  rpcs: { method: string; request: string; response: string; streaming: boolean }[];
  messages: Record<string, { fields: InvField[] }>;
  enums: Record<string, Record<string, number>>;
}
const inv = readJson<Inventory>(join(TEST_DATA, 'openshell-wire-inventory.json'));

/** Our schema field in the inventory's notation. */
function asInventory(f: FieldSchema): InvField {
  const out: InvField = {
    name: f.name,
    number: f.number,
    type: f.kind === 'map' ? `map<${f.mapKey},${f.type}>` : f.type,
    jsonName: f.jsonName,
  };
  if (f.repeated) out.repeated = true;
  if (f.optional) {
    out.oneof = `_${f.name}`;
    out.optional = true;
  } else if (f.oneof) out.oneof = f.oneof;
  if (f.secret) out.secret = true;
  return out;
}

// Our own additions (the RFC 0005 driver contract) and the well-known types are not in the inventory.
const ours = (name: string) =>
  name.startsWith('openshell.policy.driver.v1.') || name.startsWith('google.protobuf.');

describe('generated schema vs the wire inventory', () => {
  it('has every inventory message, and no message the inventory lacks', () => {
    const schemaNames = Object.keys(SCHEMA.messages)
      .filter((n) => !ours(n))
      .sort();
    expect(schemaNames).toEqual(Object.keys(inv.messages).sort());
  });

  for (const [name, msg] of Object.entries(inv.messages)) {
    it(`${name}: every field matches in name, number, type, label, map/oneof membership and secret flag`, () => {
      const ourFields = SCHEMA.messages[name]?.fields.map(asInventory);
      expect(ourFields).toEqual(msg.fields);
    });
  }

  it('has exactly the inventory enums, with the same values and numbers', () => {
    expect(SCHEMA.enums).toEqual(inv.enums);
  });

  it('declares exactly the 25 interceptable RPCs with their request and response types', () => {
    expect(inv.rpcs.every((r) => !r.streaming)).toBe(true);
    expect(SCHEMA.services['openshell.v1.OpenShell']).toEqual(
      inv.rpcs.map((r) => ({ name: r.method, request: r.request, response: r.response })),
    );
  });

  it('uses the shipped interceptor numbers (phase 2/3/4, principal 5, oneof 6/7/8, annotations 5)', () => {
    const ev = SCHEMA.messages['openshell.gateway_interceptor.v1.InterceptorEvaluation']?.fields ?? [];
    expect(ev.map((f) => [f.name, f.number, f.oneof ?? null])).toEqual([
      ['interceptor_name', 1, null],
      ['binding_id', 2, null],
      ['service', 3, null],
      ['method', 4, null],
      ['principal', 5, null],
      ['modify_operation', 6, 'phase'],
      ['validate', 7, 'phase'],
      ['post_commit', 8, 'phase'],
    ]);
    expect(SCHEMA.enums['openshell.gateway_interceptor.v1.GatewayInterceptorPhase']).toEqual({
      GATEWAY_INTERCEPTOR_PHASE_UNSPECIFIED: 0,
      GATEWAY_INTERCEPTOR_PHASE_MODIFY_OPERATION: 2,
      GATEWAY_INTERCEPTOR_PHASE_VALIDATE: 3,
      GATEWAY_INTERCEPTOR_PHASE_POST_COMMIT: 4,
    });
  });
});
