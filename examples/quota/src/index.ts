import { createQuotaInterceptor, quotaOptionsFromEnv } from './quota.js';
import { RedisQuotaStore } from './redis-store.js';
import { MemoryQuotaStore, type QuotaStore } from './store.js';

export {
  createQuotaInterceptor,
  type QuotaEnvOptions,
  type QuotaOptions,
  quotaOptionsFromEnv,
  sandboxKey,
} from './quota.js';
export { type RedisConnectOptions, RedisQuotaStore, type RedisQuotaStoreOptions } from './redis-store.js';
export {
  ANONYMOUS_RESERVATION,
  type Bucket,
  type BucketUsage,
  MemoryQuotaStore,
  type QuotaStore,
  type ReleasedSandbox,
  type ReserveResult,
} from './store.js';

/**
 * The quota interceptor configured from QUOTA_* environment variables (see
 * quotaOptionsFromEnv): counts in Redis when QUOTA_REDIS_URL or REDIS_URL is set,
 * else in this process's memory.
 */
const { redisUrl, redisPrefix, ...options } = quotaOptionsFromEnv(process.env);
const store: QuotaStore = redisUrl
  ? RedisQuotaStore.connect(redisUrl, { unref: true, ...(redisPrefix ? { prefix: redisPrefix } : {}) })
  : new MemoryQuotaStore();
const quota = createQuotaInterceptor({ ...options, store });
export default quota;
