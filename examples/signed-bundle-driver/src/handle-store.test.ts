import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HandleStore } from './handle-store.js';

const log = pino({ level: 'silent' });
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handles-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ctx = { sandboxId: 'sb-1', userSubject: 'alice', attributes: { tenant_id: 'acme' } };

describe('HandleStore', () => {
  it('persists each handle as a 0600 record before returning it, and a reopened store keeps it', async () => {
    const store = await HandleStore.open(join(dir, 'state'), log);
    const h = await store.acquire(ctx);
    expect(h).toMatch(/^h_[A-Za-z0-9_-]{22}$/);
    const file = join(dir, 'state', `${h}.json`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({
      version: 1,
      handle: h,
      context: { sandbox_id: 'sb-1', user_subject: 'alice', attributes: { tenant_id: 'acme' } },
    });
    const reopened = await HandleStore.open(join(dir, 'state'), log);
    expect(reopened.get(h)?.context).toEqual(ctx);
    expect(reopened.size).toBe(1);
  });

  it('release removes the record once; a second release and unknown handles answer false', async () => {
    const store = await HandleStore.open(dir, log);
    const h = await store.acquire(ctx);
    expect(await store.release(h)).toBe(true);
    expect(await store.release(h)).toBe(false);
    expect(await store.release('h_unknownunknownunknown0')).toBe(false);
    expect(await readdir(dir)).toEqual([]);
    expect((await HandleStore.open(dir, log)).size).toBe(0);
  });

  it('never turns a handle from the wire into a path outside the store', async () => {
    await writeFile(join(dir, 'victim.json'), '{}');
    const store = await HandleStore.open(join(dir, 'state'), log);
    expect(store.get('../victim')).toBeUndefined();
    expect(await store.release('../victim')).toBe(false);
    expect(await readFile(join(dir, 'victim.json'), 'utf8')).toBe('{}');
  });

  it('removes temporary files left by a crashed write and skips unreadable records', async () => {
    await writeFile(join(dir, '.h_aaaaaaaaaaaaaaaaaaaaaa.json.0123.tmp'), '{"half":');
    await writeFile(join(dir, 'h_bbbbbbbbbbbbbbbbbbbbbb.json'), 'garbage');
    await writeFile(
      join(dir, 'h_cccccccccccccccccccccc.json'),
      JSON.stringify({ version: 1, handle: 'h_other', context: {} }),
    );
    const store = await HandleStore.open(dir, log);
    expect(store.size).toBe(0);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('concurrent acquires all persist', async () => {
    const store = await HandleStore.open(dir, log);
    const hs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.acquire({ ...ctx, sandboxId: `sb-${i}` })),
    );
    expect(new Set(hs).size).toBe(20);
    expect((await HandleStore.open(dir, log)).size).toBe(20);
  });
});
