import { Redis, type RedisOptions } from 'ioredis';
import type { Bucket, BucketUsage, QuotaStore, ReleasedSandbox, ReserveResult } from './store.js';

// Every script reads the clock of the Redis server (TIME), so replicas with skewed
// clocks agree on when a reservation expires. All keys share one hash tag, so the
// scripts also run on Redis Cluster (one slot).
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const EXPIRE_AT_LEAST = `local function expire_at_least(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end`;

/** KEYS: running_1, reserved_1, ...; ARGV: id, ttl_ms, limit_1, ... → {1, count...} or {0, bucket_index, count}. */
const RESERVE = `${NOW}
${EXPIRE_AT_LEAST}
local id = ARGV[1]
local ttl = tonumber(ARGV[2])
local n = #KEYS / 2
local counts = {}
for i = 1, n do
  local running, reserved = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREMRANGEBYSCORE', reserved, '-inf', now)
  local count = redis.call('SCARD', running) + redis.call('ZCARD', reserved)
  if not redis.call('ZSCORE', reserved, id) then
    if count >= tonumber(ARGV[2 + i]) then return {0, i, count} end
    count = count + 1
  end
  counts[i] = count
end
local out = {1}
for i = 1, n do
  redis.call('ZADD', KEYS[2 * i], now + ttl, id)
  expire_at_least(KEYS[2 * i], ttl)
  out[i + 1] = counts[i]
end
return out`;

/** KEYS: owners, running_1, reserved_1, ...; ARGV: sandbox, id, key prefix, buckets (JSON list). */
const COMMIT = `${NOW}
local owners, sandbox, id, prefix = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local prev = redis.call('HGET', owners, sandbox)
if prev then
  for _, b in ipairs(cjson.decode(prev)) do redis.call('SREM', prefix .. 'running:' .. b, sandbox) end
end
for i = 2, #KEYS, 2 do
  local running, reserved = KEYS[i], KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', reserved, '-inf', now)
  if redis.call('ZREM', reserved, id) == 0 then
    local oldest = redis.call('ZRANGE', reserved, 0, 0)
    if oldest[1] then redis.call('ZREM', reserved, oldest[1]) end
  end
  redis.call('SADD', running, sandbox)
end
redis.call('HSET', owners, sandbox, ARGV[4])
return 1`;

/** KEYS: pending list of the caller; ARGV: sandbox, ttl_ms. */
const MARK_DELETE = `${NOW}
${EXPIRE_AT_LEAST}
local ttl = tonumber(ARGV[2])
redis.call('RPUSH', KEYS[1], cjson.encode({s = ARGV[1], e = now + ttl}))
expire_at_least(KEYS[1], ttl)
return 1`;

/** KEYS: pending list of the caller, owners; ARGV: key prefix → nil, {sandbox}, or {sandbox, buckets JSON}. */
const CONFIRM_DELETE = `${NOW}
while true do
  local raw = redis.call('LPOP', KEYS[1])
  if not raw then return false end
  local entry = cjson.decode(raw)
  if entry.e > now then
    local prev = redis.call('HGET', KEYS[2], entry.s)
    if not prev then return {entry.s} end
    for _, b in ipairs(cjson.decode(prev)) do redis.call('SREM', ARGV[1] .. 'running:' .. b, entry.s) end
    redis.call('HDEL', KEYS[2], entry.s)
    return {entry.s, prev}
  end
end`;

/** KEYS: running, reserved → {running, live reservations}. */
const USAGE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return {redis.call('SCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}`;

const SCRIPTS = {
  quotaReserve: RESERVE,
  quotaCommit: COMMIT,
  quotaMarkDelete: MARK_DELETE,
  quotaConfirmDelete: CONFIRM_DELETE,
  quotaUsage: USAGE,
} as const;
type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

export interface RedisQuotaStoreOptions {
  /** Key prefix; it becomes a hash tag `{prefix}` shared by every key (default `openshell:quota`). */
  readonly prefix?: string;
  /**
   * Do not let the Redis connection keep the process alive once nothing else does
   * (a served interceptor then exits when its server closes). Default false.
   */
  readonly unref?: boolean;
}

export interface RedisConnectOptions extends RedisQuotaStoreOptions {
  /** Per-command timeout in ms, so a stalled Redis fails a call instead of hanging it (default 1000). */
  readonly commandTimeoutMs?: number;
  /** Extra ioredis options. */
  readonly redis?: RedisOptions;
}

function asNumbers(v: unknown): number[] {
  if (!Array.isArray(v)) throw new Error(`unexpected reply from the quota script: ${JSON.stringify(v)}`);
  return v.map((x) => Number(x));
}

/**
 * A store shared by every interceptor replica through one Redis: reservations,
 * commits and deletes are Lua scripts, so check-and-reserve is atomic however
 * many replicas race, and reservations expire on the server's clock.
 */
export class RedisQuotaStore implements QuotaStore {
  /** `{prefix}:`: every key starts with it. */
  readonly keyPrefix: string;
  private readonly owned: boolean;

  /** Use an existing ioredis client (not closed by `close()` unless `owned`). */
  constructor(
    readonly client: Redis,
    options: RedisQuotaStoreOptions & { readonly owned?: boolean } = {},
  ) {
    const prefix = options.prefix ?? 'openshell:quota';
    if (prefix === '' || /[{}\s]/.test(prefix)) {
      throw new Error(
        `redis quota store: prefix must be non-empty, without braces or whitespace, got ${JSON.stringify(prefix)}`,
      );
    }
    this.keyPrefix = `{${prefix}}:`;
    this.owned = options.owned ?? false;
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in client)) client.defineCommand(name, { lua });
    }
    if (options.unref) {
      const unref = () => client.stream?.unref?.();
      client.on('connect', unref);
      unref();
    }
  }

  /** Connect to `url` (`redis://[user:pass@]host:port[/db]` or `rediss://`). */
  static connect(url: string, options: RedisConnectOptions = {}): RedisQuotaStore {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`redis quota store: not a URL: ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      throw new Error(`redis quota store: expected a redis:// or rediss:// URL, got ${parsed.protocol}//`);
    }
    const client = new Redis(url, {
      commandTimeout: options.commandTimeoutMs ?? 1000,
      maxRetriesPerRequest: 1,
      ...options.redis,
    });
    // ioredis reconnects by itself; without a listener an outage would be an unhandled 'error' event.
    client.on('error', () => {});
    return new RedisQuotaStore(client, { ...options, owned: true });
  }

  private script(name: ScriptName): ScriptFn {
    const fn = (this.client as unknown as Record<string, ScriptFn>)[name];
    if (typeof fn !== 'function') throw new Error(`redis quota store: script ${name} is not defined`);
    return fn.bind(this.client);
  }

  private running(bucket: string): string {
    return `${this.keyPrefix}running:${bucket}`;
  }

  private reserved(bucket: string): string {
    return `${this.keyPrefix}reserved:${bucket}`;
  }

  private get owners(): string {
    return `${this.keyPrefix}owners`;
  }

  private pending(caller: string): string {
    return `${this.keyPrefix}pending:${caller}`;
  }

  async reserve(buckets: readonly Bucket[], id: string, ttlMs: number): Promise<ReserveResult> {
    const keys = buckets.flatMap((b) => [this.running(b.key), this.reserved(b.key)]);
    const reply = asNumbers(
      await this.script('quotaReserve')(
        keys.length,
        ...keys,
        id,
        Math.max(1, Math.round(ttlMs)),
        ...buckets.map((b) => b.limit),
      ),
    );
    if (reply[0] === 1) return { ok: true, counts: reply.slice(1) };
    const bucket = buckets[(reply[1] ?? 1) - 1];
    if (!bucket) throw new Error(`unexpected reply from the quota script: ${JSON.stringify(reply)}`);
    return { ok: false, bucket, count: reply[2] ?? 0 };
  }

  async commit(buckets: readonly string[], sandbox: string, id: string): Promise<void> {
    const keys = [this.owners, ...buckets.flatMap((b) => [this.running(b), this.reserved(b)])];
    await this.script('quotaCommit')(
      keys.length,
      ...keys,
      sandbox,
      id,
      this.keyPrefix,
      JSON.stringify(buckets),
    );
  }

  async markDelete(caller: string, sandbox: string, ttlMs: number): Promise<void> {
    await this.script('quotaMarkDelete')(1, this.pending(caller), sandbox, Math.max(1, Math.round(ttlMs)));
  }

  async confirmDelete(caller: string): Promise<ReleasedSandbox | undefined> {
    const reply = await this.script('quotaConfirmDelete')(
      2,
      this.pending(caller),
      this.owners,
      this.keyPrefix,
    );
    if (!Array.isArray(reply) || reply.length < 2) return undefined;
    const [sandbox, buckets] = reply as [string, string];
    return { sandbox, buckets: JSON.parse(buckets) as string[] };
  }

  async usage(bucket: string): Promise<BucketUsage> {
    const [running = 0, reserved = 0] = asNumbers(
      await this.script('quotaUsage')(2, this.running(bucket), this.reserved(bucket)),
    );
    return { running, reserved };
  }

  async close(): Promise<void> {
    if (!this.owned) return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
