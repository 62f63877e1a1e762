import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, redisUnavailable, startRedis } from './__fixtures__/redis-server.js';
import { RedisQuotaStore } from './redis-store.js';
import { type Bucket, MemoryQuotaStore, type QuotaStore } from './store.js';

interface Subject {
  store: QuotaStore;
  /** Let `ms` pass (a fake clock for memory, real time for Redis). */
  pass(ms: number): Promise<void>;
}

const alice: Bucket = { key: 'subject:alice', limit: 2 };
const acme: Bucket = { key: 'tenant:acme', limit: 3 };

/** The store contract, the same for every store. */
function contract(make: () => Promise<Subject>, ttl: number) {
  it('reserves up to the limit, then reports the full bucket and its count', async () => {
    const { store } = await make();
    expect(await store.reserve([alice], 'w/a', ttl)).toEqual({ ok: true, counts: [1] });
    expect(await store.reserve([alice], 'w/b', ttl)).toEqual({ ok: true, counts: [2] });
    expect(await store.reserve([alice], 'w/c', ttl)).toEqual({ ok: false, bucket: alice, count: 2 });
    expect(await store.usage('subject:alice')).toEqual({ running: 0, reserved: 2 });
  });

  it('does not count the same reservation twice', async () => {
    const { store } = await make();
    await store.reserve([alice], 'w/a', ttl);
    expect(await store.reserve([alice], 'w/a', ttl)).toEqual({ ok: true, counts: [1] });
  });

  it('reserves in every bucket or in none', async () => {
    const { store } = await make();
    const bob: Bucket = { key: 'subject:bob', limit: 5 };
    await store.reserve([alice, acme], 'w/a1', ttl);
    await store.reserve([bob, acme], 'w/b1', ttl);
    await store.reserve([bob, acme], 'w/b2', ttl);
    const r = await store.reserve([bob, acme], 'w/b3', ttl);
    expect(r).toEqual({ ok: false, bucket: acme, count: 3 });
    expect(await store.usage('subject:bob')).toEqual({ running: 0, reserved: 2 });
  });

  it('lets an uncommitted reservation expire, so a failed create frees its slot', async () => {
    const s = await make();
    await s.store.reserve([alice], 'w/a', ttl);
    await s.store.reserve([alice], 'w/b', ttl);
    expect((await s.store.reserve([alice], 'w/c', ttl)).ok).toBe(false);
    await s.pass(ttl * 4);
    expect(await s.store.usage('subject:alice')).toEqual({ running: 0, reserved: 0 });
    expect(await s.store.reserve([alice], 'w/c', ttl)).toEqual({ ok: true, counts: [1] });
  });

  it('turns a reservation into a running sandbox at commit, which does not expire', async () => {
    const s = await make();
    await s.store.reserve([alice, acme], 'w/a', ttl);
    await s.store.commit(['subject:alice', 'tenant:acme'], 'w/a', 'w/a');
    await s.store.commit(['subject:alice', 'tenant:acme'], 'w/a', 'w/a');
    await s.pass(ttl * 4);
    expect(await s.store.usage('subject:alice')).toEqual({ running: 1, reserved: 0 });
    expect(await s.store.usage('tenant:acme')).toEqual({ running: 1, reserved: 0 });
  });

  it('consumes the oldest reservation when none has the committed name (named by the server)', async () => {
    const { store } = await make();
    await store.reserve([alice], '?one', ttl);
    await store.reserve([alice], 'w/two', ttl);
    await store.commit(['subject:alice'], 'w/generated-x1', 'w/generated-x1');
    expect(await store.usage('subject:alice')).toEqual({ running: 1, reserved: 1 });
    // The remaining reservation is w/two's: its own commit consumes it.
    await store.commit(['subject:alice'], 'w/two', 'w/two');
    expect(await store.usage('subject:alice')).toEqual({ running: 2, reserved: 0 });
  });

  it('frees a sandbox when its delete commits, whoever deletes it', async () => {
    const { store } = await make();
    await store.reserve([alice, acme], 'w/a', ttl);
    await store.commit(['subject:alice', 'tenant:acme'], 'w/a', 'w/a');
    await store.markDelete('admin', 'w/a', ttl);
    expect(await store.confirmDelete('admin')).toEqual({
      sandbox: 'w/a',
      buckets: ['subject:alice', 'tenant:acme'],
    });
    expect(await store.usage('subject:alice')).toEqual({ running: 0, reserved: 0 });
    expect(await store.usage('tenant:acme')).toEqual({ running: 0, reserved: 0 });
    expect(await store.confirmDelete('admin')).toBeUndefined();
  });

  it('confirms pending deletes oldest first, skipping expired ones and unknown sandboxes', async () => {
    const s = await make();
    for (const n of ['w/a', 'w/b']) {
      await s.store.reserve([alice], n, ttl);
      await s.store.commit(['subject:alice'], n, n);
    }
    await s.store.markDelete('alice', 'w/a', ttl);
    await s.pass(ttl * 4);
    await s.store.markDelete('alice', 'w/unknown', ttl * 100);
    await s.store.markDelete('alice', 'w/b', ttl * 100);
    expect(await s.store.confirmDelete('alice')).toBeUndefined();
    expect(await s.store.confirmDelete('alice')).toEqual({ sandbox: 'w/b', buckets: ['subject:alice'] });
    expect(await s.store.usage('subject:alice')).toEqual({ running: 1, reserved: 0 });
  });

  it('moves a sandbox whose name is committed again to its new owner', async () => {
    const { store } = await make();
    await store.commit(['subject:alice'], 'w/a', 'w/a');
    await store.commit(['subject:bob'], 'w/a', 'w/a');
    expect(await store.usage('subject:alice')).toEqual({ running: 0, reserved: 0 });
    expect(await store.usage('subject:bob')).toEqual({ running: 1, reserved: 0 });
  });
}

describe('MemoryQuotaStore', () => {
  contract(async () => {
    let now = 1_000_000;
    return {
      store: new MemoryQuotaStore(() => now),
      async pass(ms) {
        now += ms;
      },
    };
  }, 1000);
});

const unavailable = redisUnavailable();
if (unavailable) {
  console.warn(`quota: skipping the Redis store tests: ${unavailable}`);
  it.skip(`the Redis store tests (skipped: ${unavailable})`, () => {});
}

describe.skipIf(unavailable !== undefined)('RedisQuotaStore against a real redis-server', () => {
  let server: RedisServer;
  const stores: RedisQuotaStore[] = [];
  let n = 0;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await server?.stop();
  });

  contract(async () => {
    // A fresh key prefix per test keeps tests independent on one server.
    const store = RedisQuotaStore.connect(server.url, { prefix: `t${++n}` });
    stores.push(store);
    return { store, pass: (ms) => sleep(ms) };
  }, 150);

  it('keeps every key under one hash tag and sets expiries on reservation keys', async () => {
    const store = RedisQuotaStore.connect(server.url, { prefix: 'tagged' });
    stores.push(store);
    await store.reserve([alice], 'w/a', 60_000);
    await store.markDelete('alice', 'w/a', 60_000);
    const keys = (await store.client.keys('*tagged*')).sort();
    expect(keys).toEqual(['{tagged}:pending:alice', '{tagged}:reserved:subject:alice']);
    for (const k of keys) expect(await store.client.pttl(k)).toBeGreaterThan(0);
  });

  it('refuses a prefix that would break the hash tag, and a URL that is not redis', () => {
    expect(() => new RedisQuotaStore(new Redis({ lazyConnect: true }), { prefix: 'a{b}' })).toThrow(
      /prefix must be non-empty, without braces/,
    );
    expect(() => RedisQuotaStore.connect('http://127.0.0.1:6379')).toThrow(/expected a redis:\/\//);
    expect(() => RedisQuotaStore.connect('nope')).toThrow(/not a URL/);
  });

  it('fails a call (instead of hanging) when Redis is unreachable', async () => {
    const store = RedisQuotaStore.connect('redis://127.0.0.1:1', {
      commandTimeoutMs: 300,
      redis: { retryStrategy: () => null },
    });
    stores.push(store);
    await expect(store.reserve([alice], 'w/a', 1000)).rejects.toThrow();
  });
});
