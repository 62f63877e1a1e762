import { readdirSync, readFileSync } from 'node:fs';
import { evaluationPhaseFields, OPENSHELL_SERVICE, type Phase } from '@openshell-interceptors/protocol';
import type { Interceptor, JsonObject } from '@openshell-interceptors/sdk';
import { describe, expect, it } from 'vitest';

const DOCS = new URL('../', import.meta.url);
const HERE = new URL('./', import.meta.url);
const SNIPPET = /<!-- snippet: (\S+) -->\n```ts\n([\s\S]*?)```/g;

/** Every guide under docs/ that quotes snippets, with the quoted blocks. */
function quotedSnippets(): { guide: string; name: string; body: string }[] {
  const out: { guide: string; name: string; body: string }[] = [];
  for (const guide of readdirSync(DOCS).filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(new URL(guide, DOCS), 'utf8');
    for (const m of text.matchAll(SNIPPET)) out.push({ guide, name: m[1]!, body: m[2]! });
  }
  return out;
}

const snippetFiles = readdirSync(HERE).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

describe('docs snippets', () => {
  const quoted = quotedSnippets();

  it('are quoted in the guides exactly as the type-checked files', () => {
    expect(quoted.length).toBeGreaterThanOrEqual(12);
    for (const q of quoted) {
      const file = readFileSync(new URL(q.name, HERE), 'utf8');
      expect(q.body, `${q.guide}: snippet ${q.name} differs from docs/snippets/${q.name}`).toBe(file);
    }
  });

  it('cover every TypeScript block of the guides (an unmarked block would not be compiled)', () => {
    for (const guide of readdirSync(DOCS).filter((f) => f.endsWith('.md'))) {
      const text = readFileSync(new URL(guide, DOCS), 'utf8');
      const blocks = [...text.matchAll(/^```ts$/gm)].length;
      const marked = [...text.matchAll(SNIPPET)].length;
      expect(marked, `${guide}: every \`\`\`ts block needs a <!-- snippet: file.ts --> marker`).toBe(blocks);
    }
  });

  it('are each quoted by a guide (no orphan files)', () => {
    const names = new Set(quoted.map((q) => q.name));
    expect(snippetFiles.filter((f) => !names.has(f))).toEqual([]);
  });
});

function ev(method: string, phase: Phase, operation: JsonObject, principal: Record<string, string> = {}) {
  return {
    interceptorName: 'docs',
    bindingId: '',
    service: OPENSHELL_SERVICE,
    method,
    principal: { kind: 'user', subject: 'alice@example.com', roles: 'dev', ...principal },
    ...evaluationPhaseFields(phase, operation),
  };
}

const paths = (r: { patches: { op: string; path: string }[] }) => r.patches.map((p) => `${p.op} ${p.path}`);

describe('docs snippets behave as the guide says', () => {
  it('quickstart names, lower-cases and validates', async () => {
    const naming = (await import('./quickstart.js')).default as Interceptor;
    const named = await naming.evaluate(ev('CreateSandbox', 'modify_operation', {}));
    expect(named.patches).toEqual([{ op: 'add', path: '/name', value: 'alice-sandbox', from: '' }]);
    const denied = await naming.evaluate(ev('CreateSandbox', 'validate', { name: 'no_underscores' }));
    expect(denied).toMatchObject({ allowed: false, statusCode: 'INVALID_ARGUMENT' });
  });

  it('draft adds an escaped label and removes only what it deletes', async () => {
    const { labels } = await import('./draft.js');
    const r = await labels.evaluate(
      ev('CreateSandbox', 'modify_operation', { labels: { a: 'b' }, annotations: { debug: '1', keep: 'x' } }),
    );
    expect(paths(r)).toEqual(['remove /annotations/debug', 'add /labels/example.com~1owner']);
  });

  it('explicit patches escape segments', async () => {
    const { explicit } = await import('./patches.js');
    const r = await explicit.evaluate(ev('CreateSandbox', 'modify_operation', { labels: { a: 'b' } }));
    expect(paths(r)).toEqual(['add /labels/team~1id']);
    const u = await explicit.evaluate(
      ev('UpdateConfig', 'modify_operation', { annotations: { debug: 'on' } }),
    );
    expect(paths(u)).toEqual(['remove /annotations/debug']);
  });

  it('selectors scope the guard to non-admin users', async () => {
    const { guard } = await import('./selectors.js');
    const dev = await guard.evaluate(ev('DeleteSandbox', 'validate', { name: 'x' }));
    expect(dev.allowed).toBe(false);
    const admin = await guard.evaluate(ev('DeleteSandbox', 'validate', { name: 'x' }, { roles: 'admin' }));
    expect(admin.allowed).toBe(true);
  });

  it('the manifest snippet has the bindings the guide lists', async () => {
    const { described } = await import('./manifest.js');
    expect(described.manifest().bindings.map((b) => [b.id, b.failurePolicy])).toEqual([
      ['create-sandbox', ''],
      ['config-guard', 'fail_open'],
      ['delete-sandbox-observe', 'fail_open'],
    ]);
  });

  it('compose serves both definitions', async () => {
    const platform = (await import('./compose.js')).default as Interceptor;
    expect(platform.manifest().bindings.map((b) => b.id)).toEqual(['create-sandbox', 'sandbox-quota']);
  });

  it('provider profiles get a content revision', async () => {
    const { catalog } = await import('./provider-profiles.js');
    const snap = await catalog.snapshotProviderProfiles();
    expect(snap.profiles.map((p) => p.id)).toEqual(['github', 'internal-llm']);
    expect(snap.revision).toMatch(/^sha256:/);
  });

  it('testing shows the patch the comment promises', async () => {
    const { result } = await import('./testing.js');
    expect(result.patches).toEqual([{ op: 'replace', path: '/name', value: 'team-a', from: '' }]);
  });
});
