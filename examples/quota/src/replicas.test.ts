// Two quota replicas, each a separate served process (`openshell-interceptors serve`),
// share one real Redis. A burst of concurrent creates through two gateways must never
// take more than the limit.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGateway, type Gateway, gatewayConfigFromObject } from '@openshell-interceptors/gateway';
import type { JsonObject } from '@openshell-interceptors/protocol';
import { principals } from '@openshell-interceptors/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, redisUnavailable, startRedis } from './__fixtures__/redis-server.js';
import { RedisQuotaStore } from './redis-store.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../../..');
const LIMIT = 5;

/** `openshell-interceptors serve examples/quota` from sources; resolves with the child and its address. */
async function serveReplica(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      join(root, 'packages/cli/src/bin.ts'),
      'serve',
      join(root, 'examples/quota'),
      '--listen',
      '127.0.0.1:0',
      '--insecure',
    ],
    { cwd: root, env: { ...process.env, ...env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`replica exited with ${code}: ${err.slice(-2000)}`)));
  });
  return { child, address };
}

function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

const unavailable = redisUnavailable();
if (unavailable) {
  console.warn(`quota: skipping the two-replica Redis test: ${unavailable}`);
  it.skip(`the two-replica Redis test (skipped: ${unavailable})`, () => {});
}

describe.skipIf(unavailable !== undefined)('two quota replicas sharing one Redis', () => {
  let redis: RedisServer;
  const children: ChildProcess[] = [];
  const gateways: Gateway[] = [];
  let store: RedisQuotaStore;
  const prefix = `replicas-${process.pid}`;

  beforeAll(async () => {
    redis = await startRedis();
    const env = {
      QUOTA_REDIS_URL: redis.url,
      QUOTA_REDIS_PREFIX: prefix,
      QUOTA_MAX_SANDBOXES: String(LIMIT),
    };
    const replicas = await Promise.all([serveReplica(env), serveReplica(env)]);
    const logger = pino({ level: 'silent' });
    for (const r of replicas) {
      children.push(r.child);
      const config = gatewayConfigFromObject({
        interceptors: [
          {
            name: 'quota',
            grpc_endpoint: `http://${r.address}`,
            allow_insecure_transport: true,
            timeout: '10s',
          },
        ],
      });
      gateways.push(await createGateway(config, { logger }));
    }
    store = RedisQuotaStore.connect(redis.url, { prefix });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all(children.map(stop));
    await store?.close();
    await redis?.stop();
  });

  it('never exceeds the limit under a concurrent burst, and frees slots on delete', async () => {
    const alice = principals.user('alice@acme.example');
    const sandboxes = new Set<string>();
    let peak = 0;
    const commit = async (req: JsonObject): Promise<JsonObject> => {
      // Let the other calls interleave between validate and commit.
      await new Promise((r) => setTimeout(r, Math.random() * 20));
      sandboxes.add(String(req.name));
      peak = Math.max(peak, sandboxes.size);
      return { sandbox: { metadata: { name: req.name, workspace: req.workspace } } } as JsonObject;
    };
    const burst = Array.from({ length: 40 }, (_, i) =>
      gateways[i % 2]!.intercept({
        method: 'CreateSandbox',
        principal: alice,
        request: { name: `box-${i}`, workspace: 'acme' },
        commit,
      }),
    );
    const outcomes = await Promise.all(burst);
    const allowed = outcomes.filter((o) => o.outcome === 'allowed');
    expect(allowed).toHaveLength(LIMIT);
    expect(peak).toBe(LIMIT);
    for (const o of outcomes.filter((x) => x.outcome === 'denied')) {
      expect(o.status?.code).toBe('RESOURCE_EXHAUSTED');
      expect(o.status?.message).toMatch(new RegExp(`${LIMIT} of ${LIMIT} sandboxes in use`));
    }
    expect(await store.usage('subject:alice@acme.example')).toEqual({ running: LIMIT, reserved: 0 });

    // Delete two through one replica, then race four creates through the other: two fit.
    const names = [...sandboxes].slice(0, 2);
    for (const name of names) {
      const d = await gateways[0]!.intercept({
        method: 'DeleteSandbox',
        principal: alice,
        request: { name, workspace: 'acme' },
        commit: async () => {
          sandboxes.delete(name);
          return { deleted: true };
        },
      });
      expect(d.outcome).toBe('allowed');
    }
    const again = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        gateways[1]!.intercept({
          method: 'CreateSandbox',
          principal: alice,
          request: { name: `again-${i}`, workspace: 'acme' },
          commit,
        }),
      ),
    );
    expect(again.filter((o) => o.outcome === 'allowed')).toHaveLength(2);
    expect(sandboxes.size).toBe(LIMIT);
    expect(await store.usage('subject:alice@acme.example')).toEqual({ running: LIMIT, reserved: 0 });
  }, 60_000);

  it('shuts down cleanly on SIGTERM: the Redis connection does not keep a replica alive', async () => {
    await Promise.all(gateways.splice(0).map((g) => g.close()));
    expect(await Promise.all(children.map(stop))).toEqual([0, 0]);
  }, 30_000);
});
