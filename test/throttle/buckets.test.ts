/**
 * The shared rate bucket on real servers: reservations are spaced exactly n / rate apart on the
 * bucket's clock whoever asks (Redis and the state store alike), an idle bucket grants one batch
 * at once and no more, and an unreachable bucket grants nothing (fail closed) until it is back.
 *
 * No assertion depends on how fast this machine is: a reservation's wait is compared with the
 * time that passed between reservations, measured around the calls.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../../executor/db/database.js';
import { migrate } from '../../executor/store/migrate.js';
import { SharedBucket, type BucketBackend } from '../../executor/throttle/bucket.js';
import { RedisBucketBackend } from '../../executor/throttle/redis-bucket.js';
import { StateBucketBackend } from '../../executor/throttle/state-bucket.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../support/db.js';
import { startRedis } from '../support/servers.js';
import { waitUntil } from '../support/runs.js';

let db: TestDatabase;
let state: Database;
let redis: Redis;

beforeAll(async () => {
  db = await createTestDatabase('bucket');
  state = await openDatabase(db.url, { max: 4 });
  await migrate(state);
  redis = new Redis(inject('redisUrl'));
});

afterAll(async () => {
  redis?.disconnect();
  await state?.close();
  await db?.drop();
});

const backends: Array<[string, () => BucketBackend]> = [
  ['redis', () => new RedisBucketBackend(redis, uniqueName('run'), 'test redis')],
  ['state store', () => new StateBucketBackend(state, uniqueName('run'))],
];

describe.each(backends)('GCRA reservations in %s', (_name, make) => {
  it('an idle bucket grants one batch now; the next ones queue exactly n / rate apart', async () => {
    const bucket = make();
    const rate = 100; // items per second: 10 ms an item
    const perItem = 1e6 / rate;
    const t0 = performance.now();
    const first = await bucket.reserve(10, perItem);
    const t1 = performance.now();
    expect(first).toBeLessThanOrEqual(0);
    // Reserve 5 batches back to back: batch k starts k × 100 ms after the first on the bucket's
    // clock, so its wait is 100k ms minus the bucket time between the two reservations, which
    // lies between (before - t1) and (after - t0) as measured here.
    for (let k = 1; k <= 5; k++) {
      const before = performance.now();
      const wait = (await bucket.reserve(10, perItem)) / 1000;
      const after = performance.now();
      expect(wait).toBeLessThanOrEqual(k * 100 - (before - t1) + 1); // +1 ms: the clocks' rounding
      expect(wait).toBeGreaterThanOrEqual(k * 100 - (after - t0) - 1);
    }
  });

  it('a bucket left idle does not bank tokens: after a pause the first batch is free and the second waits a full batch', async () => {
    const bucket = make();
    const perItem = 1e6 / 50; // 20 ms an item
    await bucket.reserve(5, perItem);
    await new Promise((r) => setTimeout(r, 300)); // idle for 3 batches' worth
    const before = performance.now();
    expect(await bucket.reserve(5, perItem)).toBeLessThanOrEqual(0);
    const wait = (await bucket.reserve(5, perItem)) / 1000;
    const after = performance.now();
    expect(wait).toBeGreaterThanOrEqual(100 - (after - before) - 1);
    expect(wait).toBeLessThanOrEqual(100 + 1);
  });
});

describe('an unreachable Redis bucket', () => {
  it('grants nothing while down (fail closed), says so once, and grants again when it is back', async () => {
    const server = await startRedis();
    const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(50 * n, 200), lazyConnect: false });
    client.on('error', () => undefined);
    if (client.status !== 'ready') await new Promise((r) => client.once('ready', r));
    try {
      const seen: string[] = [];
      let outage = false;
      const bucket = new SharedBucket(new RedisBucketBackend(client, uniqueName('run'), 'dedicated redis'), {
        itemsPerSecond: 1000,
        outageTimeoutMs: 500,
        onUnreachable: (e) => seen.push(`down: ${e.message}`),
        onReachable: () => seen.push('up'),
        onOutage: () => { outage = true; },
      });
      await bucket.acquire(10);
      await server.stop();
      let granted = false;
      const pending = bucket.acquire(10).then(() => { granted = true; });
      await waitUntil(async () => (outage ? true : undefined), 'the outage to be reported', 30_000, 20);
      expect(granted).toBe(false);
      expect(bucket.unreachable).toBe(true);
      expect(seen.filter((s) => s.startsWith('down'))).toHaveLength(1);
      await server.start();
      await pending;
      expect(granted).toBe(true);
      expect(seen.at(-1)).toBe('up');
    } finally {
      client.disconnect();
      await server.destroy();
    }
  });

  it('rejects a waiting acquire when its signal aborts (the stage stops)', async () => {
    const bucket = new SharedBucket(new StateBucketBackend(state, uniqueName('run')), { itemsPerSecond: 1 });
    await bucket.acquire(5); // the next batch is 5 s away
    const ac = new AbortController();
    const p = bucket.acquire(5, ac.signal);
    ac.abort(new Error('stopped'));
    await expect(p).rejects.toThrow('stopped');
  });
});
