import { SCHEMA } from './gen/schema.js';
import type { FieldSchema, MessageSchema, SchemaTable } from './schema-types.js';

/** Well-known types whose JSON form is free-form JSON. */
export const STRUCT = 'google.protobuf.Struct';
export const VALUE = 'google.protobuf.Value';
export const LIST_VALUE = 'google.protobuf.ListValue';
export const isFreeJsonType = (type: string): boolean =>
  type === STRUCT || type === VALUE || type === LIST_VALUE;

/** A field plus what the converters need to find it fast. */
export interface CompiledField extends FieldSchema {
  /** Property name on the ts-proto message object (lowerCamelCase of the proto name). */
  readonly prop: string;
}

export interface CompiledMessage {
  readonly name: string;
  readonly fields: readonly CompiledField[];
  /** By JSON name and by proto name (ProtoJSON parsers accept both). */
  readonly byName: ReadonlyMap<string, CompiledField>;
  /** A secret field here or anywhere below. */
  readonly hasSecret: boolean;
}

/** ts-proto's property naming: snake_case to lowerCamelCase. */
function propName(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Indexed view over a schema table. Everything is computed once at construction,
 * so look-ups on the evaluation path are map reads.
 */
export class Schema {
  readonly table: SchemaTable;
  private readonly compiled = new Map<string, CompiledMessage>();
  private readonly enumNames = new Map<string, Map<number, string>>();

  constructor(table: SchemaTable) {
    this.table = table;
    for (const [name, values] of Object.entries(table.enums)) {
      const byNumber = new Map<number, string>();
      // First name wins for aliased numbers, as protobuf does.
      for (const [n, v] of Object.entries(values)) if (!byNumber.has(v)) byNumber.set(v, n);
      this.enumNames.set(name, byNumber);
    }
    const secretMemo = new Map<string, boolean>();
    const hasSecret = (name: string, stack: Set<string>): boolean => {
      const memo = secretMemo.get(name);
      if (memo !== undefined) return memo;
      const msg = table.messages[name];
      if (!msg || stack.has(name)) return false;
      stack.add(name);
      const r = msg.fields.some(
        (f) =>
          f.secret === true ||
          ((f.kind === 'message' || (f.kind === 'map' && f.valueKind === 'message')) &&
            hasSecret(f.type, stack)),
      );
      stack.delete(name);
      secretMemo.set(name, r);
      return r;
    };
    for (const [name, msg] of Object.entries(table.messages)) {
      this.compiled.set(name, compile(name, msg, hasSecret(name, new Set())));
    }
  }

  message(name: string): CompiledMessage {
    const m = this.compiled.get(name);
    if (!m) throw new Error(`unknown message type ${name}`);
    return m;
  }

  hasMessage(name: string): boolean {
    return this.compiled.has(name);
  }

  enumValues(name: string): Readonly<Record<string, number>> {
    const e = this.table.enums[name];
    if (!e) throw new Error(`unknown enum type ${name}`);
    return e;
  }

  enumName(name: string, value: number): string | undefined {
    return this.enumNames.get(name)?.get(value);
  }

  /** Whether a value of this field's type can hold a secret somewhere below. */
  fieldHoldsSecret(f: FieldSchema): boolean {
    if (f.secret) return true;
    const msgType = f.kind === 'message' || (f.kind === 'map' && f.valueKind === 'message');
    return msgType && this.compiled.get(f.type)?.hasSecret === true;
  }
}

function compile(name: string, msg: MessageSchema, hasSecret: boolean): CompiledMessage {
  const fields = msg.fields.map((f) => ({ ...f, prop: propName(f.name) }));
  const byName = new Map<string, CompiledField>();
  for (const f of fields) {
    byName.set(f.jsonName, f);
    byName.set(f.name, f);
  }
  return { name, fields, byName, hasSecret };
}

/** The schema of every message in proto/ (OpenShell, interceptor and policy driver packages). */
export const schema = new Schema(SCHEMA);
