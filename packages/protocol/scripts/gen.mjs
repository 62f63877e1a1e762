// `pnpm gen`: regenerate everything under src/gen from ../../proto.
//
// 1. ts-proto (through buf) writes the message codecs and grpc-js service definitions.
// 2. buf builds a descriptor set; from it we write
//    - schema.ts:   a compact table of every message, field and enum, with the secret flag,
//                   which drives the operation view, the strict parse and the secret look-ups;
//    - json.ts:     the canonical ProtoJSON shape of every message as TypeScript interfaces
//                   (`XJson`, and `XView` without secret fields), plus the route type map;
//    - registry.ts: message type name -> ts-proto codec.
// The output is deterministic so CI can check it is fresh (`pnpm gen` leaves no diff).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(pkgDir, '..', '..', 'proto');
const genDir = join(pkgDir, 'src', 'gen');
const buf = join(pkgDir, 'node_modules', '.bin', 'buf');

rmSync(genDir, { recursive: true, force: true });
execFileSync(buf, ['generate', relative(pkgDir, protoDir), '--template', 'buf.gen.yaml'], {
  cwd: pkgDir,
  stdio: 'inherit',
});

const tmp = mkdtempSync(join(tmpdir(), 'openshell-gen-'));
const descPath = join(tmp, 'descriptor.json');
execFileSync(buf, ['build', protoDir, '--exclude-source-info', '-o', descPath], { stdio: 'inherit' });
const fds = JSON.parse(readFileSync(descPath, 'utf8'));
rmSync(tmp, { recursive: true, force: true });

const SCALARS = {
  TYPE_DOUBLE: 'double',
  TYPE_FLOAT: 'float',
  TYPE_INT64: 'int64',
  TYPE_UINT64: 'uint64',
  TYPE_INT32: 'int32',
  TYPE_FIXED64: 'fixed64',
  TYPE_FIXED32: 'fixed32',
  TYPE_BOOL: 'bool',
  TYPE_STRING: 'string',
  TYPE_BYTES: 'bytes',
  TYPE_UINT32: 'uint32',
  TYPE_SFIXED32: 'sfixed32',
  TYPE_SFIXED64: 'sfixed64',
  TYPE_SINT32: 'sint32',
  TYPE_SINT64: 'sint64',
};
const SECRET_OPTION = '[openshell.options.v1.secret]';
// Packages whose messages belong in the schema. descriptor.proto is only there for the option.
const SCHEMA_PACKAGES = new Set([
  'openshell.v1',
  'openshell.sandbox.v1',
  'openshell.datamodel.v1',
  'openshell.gateway_interceptor.v1',
  'openshell.policy.driver.v1',
  'google.protobuf',
]);

const messages = new Map(); // full name -> { file, desc, mapEntry }
const enums = new Map(); // full name -> { file, desc }
function collect(file, prefix, msgs, ens) {
  for (const e of ens ?? []) enums.set(`${prefix}.${e.name}`, { file, desc: e });
  for (const m of msgs ?? []) {
    const full = `${prefix}.${m.name}`;
    messages.set(full, { file, desc: m, mapEntry: Boolean(m.options?.mapEntry) });
    collect(file, full, m.nestedType, m.enumType);
  }
}
for (const file of fds.file) collect(file, file.package, file.messageType, file.enumType);

const strip = (t) => t.replace(/^\./, '');
function fieldType(f) {
  if (f.type === 'TYPE_MESSAGE') return { kind: 'message', type: strip(f.typeName) };
  if (f.type === 'TYPE_ENUM') return { kind: 'enum', type: strip(f.typeName) };
  const scalar = SCALARS[f.type];
  if (!scalar) throw new Error(`unsupported field type ${f.type}`);
  return { kind: 'scalar', type: scalar };
}

const schemaMessages = {};
for (const [full, { file, desc, mapEntry }] of [...messages].sort(([a], [b]) => (a < b ? -1 : 1))) {
  if (mapEntry || !SCHEMA_PACKAGES.has(file.package)) continue;
  if (file.package === 'google.protobuf' && !['Struct', 'Value', 'ListValue'].includes(desc.name)) continue;
  const fields = (desc.field ?? []).map((f) => {
    const out = { name: f.name, number: f.number, jsonName: f.jsonName ?? f.name };
    const isRepeated = f.label === 'LABEL_REPEATED';
    const entry = f.type === 'TYPE_MESSAGE' ? messages.get(strip(f.typeName)) : undefined;
    if (isRepeated && entry?.mapEntry) {
      const [k, v] = entry.desc.field;
      out.kind = 'map';
      out.mapKey = fieldType(k).type;
      const vt = fieldType(v);
      out.valueKind = vt.kind;
      out.type = vt.type;
    } else {
      const t = fieldType(f);
      out.kind = t.kind;
      out.type = t.type;
      if (isRepeated) out.repeated = true;
    }
    if (f.proto3Optional) out.optional = true;
    else if (f.oneofIndex !== undefined) out.oneof = desc.oneofDecl[f.oneofIndex].name;
    if (f.options?.[SECRET_OPTION] === true) out.secret = true;
    return out;
  });
  schemaMessages[full] = { fields };
}
const schemaEnums = {};
for (const [full, { file, desc }] of [...enums].sort(([a], [b]) => (a < b ? -1 : 1))) {
  if (!SCHEMA_PACKAGES.has(file.package) || file.package === 'google.protobuf') continue;
  schemaEnums[full] = Object.fromEntries(desc.value.map((v) => [v.name, v.number]));
}

const services = {};
for (const file of fds.file) {
  for (const s of file.service ?? []) {
    services[`${file.package}.${s.name}`] = s.method.map((m) => ({
      name: m.name,
      request: strip(m.inputType),
      response: strip(m.outputType),
    }));
  }
}

const HEADER = '// Code generated by packages/protocol/scripts/gen.mjs from proto/. DO NOT EDIT.\n';

// ---- schema.ts
writeFileSync(
  join(genDir, 'schema.ts'),
  `${HEADER}import type { SchemaTable } from '../schema-types.js';

export const SCHEMA: SchemaTable = ${JSON.stringify({ messages: schemaMessages, enums: schemaEnums, services }, null, 2)};
`,
);

// ---- json.ts
const shortName = (full) => full.slice(full.lastIndexOf('.') + 1);
const owned = Object.keys(schemaMessages).filter((m) => !m.startsWith('google.protobuf.'));
const seen = new Map();
for (const m of [...owned, ...Object.keys(schemaEnums)]) {
  const s = shortName(m);
  if (seen.has(s)) throw new Error(`short name ${s} used by ${seen.get(s)} and ${m}: extend the naming rule`);
  seen.set(s, m);
}
const secretMemo = new Map();
function hasSecret(full, stack = new Set()) {
  if (secretMemo.has(full)) return secretMemo.get(full);
  if (stack.has(full)) return false;
  stack.add(full);
  const msg = schemaMessages[full];
  const r = Boolean(
    msg?.fields.some(
      (f) =>
        f.secret ||
        ((f.kind === 'message' || (f.kind === 'map' && f.valueKind === 'message')) &&
          hasSecret(f.type, stack)),
    ),
  );
  stack.delete(full);
  secretMemo.set(full, r);
  return r;
}
function tsType(kind, type, view) {
  if (kind === 'scalar') {
    if (['int64', 'uint64', 'fixed64', 'sfixed64', 'sint64'].includes(type)) return 'string';
    if (type === 'bool') return 'boolean';
    if (type === 'string' || type === 'bytes') return 'string';
    if (type === 'float' || type === 'double') return 'JsonFloat';
    return 'number';
  }
  if (kind === 'enum') return `${shortName(type)}Json`;
  if (type === 'google.protobuf.Struct') return 'JsonObject';
  if (type === 'google.protobuf.Value') return 'JsonValue';
  if (type === 'google.protobuf.ListValue') return 'JsonValue[]';
  return `${shortName(type)}${view && hasSecret(type) ? 'View' : 'Json'}`;
}
function iface(full, view) {
  const lines = [];
  for (const f of schemaMessages[full].fields) {
    if (view && f.secret) continue;
    let t;
    if (f.kind === 'map') t = `{ [key: string]: ${tsType(f.valueKind, f.type, view)} }`;
    else {
      t = tsType(f.kind, f.type, view);
      if (f.repeated) t = `${t.includes(' ') ? `(${t})` : t}[]`;
    }
    const notes = [`\`${f.name}\` = ${f.number}`];
    if (f.oneof) notes.push(`oneof \`${f.oneof}\``);
    if (f.optional) notes.push('optional (presence kept)');
    if (f.secret) notes.push('secret: never in an operation view');
    lines.push(`  /** ${notes.join('; ')} */\n  ${f.jsonName}?: ${t};`);
  }
  const name = `${shortName(full)}${view ? 'View' : 'Json'}`;
  const doc = `/** Canonical ProtoJSON of \`${full}\`${view ? ', as the operation view shows it (secret fields removed)' : ''}. */`;
  return lines.length
    ? `${doc}\nexport interface ${name} {\n${lines.join('\n')}\n}`
    : `${doc}\nexport type ${name} = Record<string, never>;`;
}
const jsonOut = [
  HEADER,
  '/** A JSON value, as carried by `google.protobuf.Value`. */',
  'export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };',
  '/** A JSON object, as carried by `google.protobuf.Struct`. */',
  'export type JsonObject = { [key: string]: JsonValue };',
  '/** A float or double in ProtoJSON: non-finite values are the strings NaN, Infinity and -Infinity. */',
  "export type JsonFloat = number | 'NaN' | 'Infinity' | '-Infinity';",
  '',
];
for (const [full, values] of Object.entries(schemaEnums)) {
  jsonOut.push(`/** ProtoJSON of enum \`${full}\`: its value names (unknown numbers appear as numbers). */`);
  jsonOut.push(
    `export type ${shortName(full)}Json = ${Object.keys(values)
      .map((v) => `'${v}'`)
      .join(' | ')};`,
  );
  jsonOut.push('');
}
for (const full of owned) {
  jsonOut.push(iface(full, false));
  jsonOut.push(
    hasSecret(full)
      ? iface(full, true)
      : `/** Canonical ProtoJSON of \`${full}\`, as the operation view shows it (it has no secrets). */\nexport type ${shortName(full)}View = ${shortName(full)}Json;`,
  );
  jsonOut.push('');
}
const rpcs = services['openshell.v1.OpenShell'];
jsonOut.push('/** The interceptable RPCs of `openshell.v1.OpenShell`, with their ProtoJSON shapes. */');
jsonOut.push('export interface InterceptableRpcTypes {');
for (const r of rpcs) {
  const q = shortName(r.request);
  const s = shortName(r.response);
  jsonOut.push(
    `  ${r.name}: { request: ${q}Json; requestView: ${q}View; response: ${s}Json; responseView: ${s}View };`,
  );
}
jsonOut.push('}');
jsonOut.push('');
jsonOut.push('/** Method names of the interceptable RPCs, in the order the service declares them. */');
jsonOut.push(
  `export const INTERCEPTABLE_METHODS = [\n${rpcs.map((r) => `  '${r.name}',`).join('\n')}\n] as const;`,
);
writeFileSync(join(genDir, 'json.ts'), `${jsonOut.join('\n')}\n`);

// ---- registry.ts
const fileOf = new Map();
for (const file of fds.file) {
  for (const m of file.messageType ?? [])
    fileOf.set(`${file.package}.${m.name}`, file.name.replace(/\.proto$/, '.js'));
}
const imports = new Map();
const entries = [];
for (const full of Object.keys(schemaMessages)) {
  const f = fileOf.get(full);
  const local = `${full.replaceAll('.', '_')}`;
  if (!imports.has(f)) imports.set(f, []);
  imports.get(f).push(`${shortName(full)} as ${local}`);
  entries.push(`  '${full}': ${local},`);
}
writeFileSync(
  join(genDir, 'registry.ts'),
  `${HEADER}import type { MessageCodec } from '../schema-types.js';
${[...imports]
  .sort(([a], [b]) => (a < b ? -1 : 1))
  .map(([f, names]) => `import { ${names.join(', ')} } from './${f}';`)
  .join('\n')}

/** Every schema message's ts-proto codec, by full proto name. */
export const CODECS: Record<string, MessageCodec> = {
${entries.join('\n')}
};
`,
);
console.log(
  `generated ${Object.keys(schemaMessages).length} messages, ${Object.keys(schemaEnums).length} enums`,
);
