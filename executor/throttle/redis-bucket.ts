/**
 * The run's rate bucket in Redis: one key per run (`reprise:rate:<run id>`) holding the GCRA
 * `tat` in microseconds of Redis's own clock, reserved by one Lua script (atomic on the server).
 * See bucket.ts for the algorithm and its burst bound.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BucketBackend } from './bucket.js';

/** Prefix of the bucket keys; the run id follows. */
export const REDIS_BUCKET_PREFIX = 'reprise:rate:';

/** How long a bucket key outlives its last reservation. */
const KEY_TTL_MS = 10 * 60_000;

/**
 * KEYS[1] the bucket; ARGV[1] microseconds per item; ARGV[2] items; ARGV[3] key TTL in ms.
 * Returns the microseconds until the reserved slot starts (0 when it starts now).
 */
export const RESERVE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local nextTat = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', nextTat), 'PX', math.floor((nextTat - now) / 1000) + tonumber(ARGV[3]))
return math.floor(tat - now)
`;

const RESERVE_SHA = createHash('sha1').update(RESERVE_LUA).digest('hex');

export class RedisBucketBackend implements BucketBackend {
  readonly key: string;

  constructor(private readonly redis: Redis, runId: string, readonly label: string) {
    this.key = `${REDIS_BUCKET_PREFIX}${runId}`;
  }

  async reserve(n: number, microsPerItem: number): Promise<number> {
    const args = [String(microsPerItem), String(n), String(KEY_TTL_MS)];
    let out: unknown;
    try {
      out = await this.redis.evalsha(RESERVE_SHA, 1, this.key, ...args);
    } catch (e) {
      if (!/NOSCRIPT/.test((e as Error).message)) throw e;
      out = await this.redis.eval(RESERVE_LUA, 1, this.key, ...args);
    }
    return Number(out);
  }
}
