/**
 * reprise/live against real servers: the claims a live consumer takes are the very claims the
 * backfill's dedupe store reads (same Redis keys and values, same reprise.dedupe_keys rows), a
 * claim is exclusive across owners, `delivery` decides an owner's unconfirmed claim, and an
 * unreachable store throws instead of answering true.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../executor/db/database.js';
import { DedupeUnavailableError, PostgresDedupeStore, RedisDedupeStore } from '../../executor/effects/dedupe.js';
import { claim, createLiveClaimer, redisDedupeKey, type LiveClaimer } from '../../executor/live/index.js';
import { createTestDatabase, uniqueName, withClient, type TestDatabase } from '../support/db.js';
import { freePort, startRedis, type RedisServer } from '../support/servers.js';

const RUN = 'orders-tax-recompute.r1.0123abcd';

describe('reprise/live on Redis', () => {
  let redis: Redis;
  const url = inject('redisUrl');
  const open: LiveClaimer[] = [];
  const claimer = (o: Partial<Parameters<typeof createLiveClaimer>[0]> = {}): LiveClaimer => {
    const c = createLiveClaimer({ store: 'redis', url, owner: 'live:invoicer', ...o });
    open.push(c);
    return c;
  };

  beforeAll(() => { redis = new Redis(url); });
  afterAll(async () => {
    for (const c of open) await c.close();
    redis.disconnect();
  });

  it('claims a key once; the backfill store sees it as taken and the claim carries the owner', async () => {
    const ns = uniqueName('live');
    const live = claimer();
    expect(await live.claim(ns, 'invoice-corrected:1')).toBe(true);
    expect(await live.claim(ns, 'invoice-corrected:1')).toBe(false); // at-most-once: an unconfirmed own claim is not re-applied
    const raw = JSON.parse((await redis.get(redisDedupeKey(ns, 'invoice-corrected:1')))!);
    expect(raw).toMatchObject({ o: 'live:invoicer', s: 'claimed' });
    const ttl = await redis.pttl(redisDedupeKey(ns, 'invoice-corrected:1'));
    expect(ttl).toBeGreaterThan(29 * 86_400_000); // the plan's default ttl, 30d
    await live.confirm(ns, 'invoice-corrected:1');
    expect(JSON.parse((await redis.get(redisDedupeKey(ns, 'invoice-corrected:1')))!).s).toBe('applied');

    const backfill = new RedisDedupeStore(redis, ns, 60_000);
    expect(await backfill.claim('invoice-corrected:1', RUN, '1')).toEqual({ outcome: 'taken', owner: 'live:invoicer', state: 'applied' });
    expect(await backfill.claim('invoice-corrected:2', RUN, '2')).toEqual({ outcome: 'claimed' });
    expect(await live.claim(ns, 'invoice-corrected:2')).toBe(false);
    await backfill.confirm('invoice-corrected:2', RUN);
    expect(await live.claim(ns, 'invoice-corrected:2')).toBe(false);
    // Another live owner is someone else too.
    expect(await claimer({ owner: 'live:ledger' }).claim(ns, 'invoice-corrected:1')).toBe(false);
  });

  it('release frees a key; confirm and release touch only the owner\'s own claims', async () => {
    const ns = uniqueName('live');
    const live = claimer({ namespace: ns });
    const other = claimer({ owner: 'live:other', namespace: ns });
    expect(await live.claim('k1')).toBe(true);
    await other.release('k1');
    await other.confirm('k1');
    expect(JSON.parse((await redis.get(redisDedupeKey(ns, 'k1')))!)).toMatchObject({ o: 'live:invoicer', s: 'claimed' });
    await live.release('k1');
    expect(await redis.exists(redisDedupeKey(ns, 'k1'))).toBe(0);
    expect(await other.claim('k1')).toBe(true);
    // A key released after a failed apply is free for the backfill as well.
    await other.release('k1');
    expect((await new RedisDedupeStore(redis, ns, 60_000).claim('k1', RUN, '1')).outcome).toBe('claimed');
  });

  it('at-least-once re-claims its own unconfirmed claim, never a confirmed one', async () => {
    const ns = uniqueName('live');
    const live = claimer({ delivery: 'at-least-once', ttl: '1h' });
    expect(await live.claim(ns, 'a')).toBe(true);
    expect(await live.claim(ns, 'a')).toBe(true);
    await live.confirm(ns, 'a');
    expect(await live.claim(ns, 'a')).toBe(false);
    const pttl = await redis.pttl(redisDedupeKey(ns, 'a'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(3_600_000);
  });

  it('one-shot claim', async () => {
    const ns = uniqueName('live');
    expect(await claim(ns, 'x', { store: 'redis', url, owner: 'live:script' })).toBe(true);
    expect(await claim(ns, 'x', { store: 'redis', url, owner: 'live:script' })).toBe(false);
  });

  it('refuses bad options, and an owner that could pass for a run', () => {
    expect(() => createLiveClaimer({ store: 'redis', url, owner: RUN })).toThrow(/looks like a run id/);
    expect(() => createLiveClaimer({ store: 'redis', url, owner: '' })).toThrow(/owner/);
    expect(() => createLiveClaimer({ store: 'redis', url: 'postgres://x/y', owner: 'live:a' })).toThrow(/redis:\/\//);
    expect(() => createLiveClaimer({ store: 'redis', url, owner: 'live:a', ttl: '3 days' })).toThrow(/ttl/);
    expect(() => createLiveClaimer({ store: 'mongo' as 'redis', url, owner: 'live:a' })).toThrow(/store/);
    const c = claimer();
    return expect(c.claim('no-namespace-given')).rejects.toThrow(/no namespace/);
  });
});

describe('reprise/live fails closed', () => {
  let server: RedisServer;
  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server?.destroy(); });

  it('throws while Redis is down (never true), and claims again once it is back', async () => {
    const ns = uniqueName('live');
    const live = createLiveClaimer({ store: 'redis', url: server.url, owner: 'live:invoicer', namespace: ns });
    try {
      expect(await live.claim('before')).toBe(true);
      await server.stop();
      await expect(live.claim('during')).rejects.toBeInstanceOf(DedupeUnavailableError);
      await expect(live.claim('before')).rejects.toBeInstanceOf(DedupeUnavailableError);
      await expect(live.confirm('before')).rejects.toBeInstanceOf(DedupeUnavailableError);
      await server.start();
      // The client reconnects by itself; wait for it rather than for a fixed time.
      let answer: boolean | undefined;
      for (let i = 0; i < 200 && answer === undefined; i++) {
        answer = await live.claim('during').catch(() => undefined);
        if (answer === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(answer).toBe(true);
      // The append-only file kept the claim taken before the outage.
      expect(await live.claim('before')).toBe(false);
    } finally {
      await live.close();
    }
  });

  it('throws when Redis was never reachable', async () => {
    const live = createLiveClaimer({ store: 'redis', url: `redis://127.0.0.1:${await freePort()}`, owner: 'live:invoicer' });
    try {
      await expect(live.claim('ns', 'k')).rejects.toBeInstanceOf(DedupeUnavailableError);
      await expect(live.claim('ns', 'k')).rejects.toBeInstanceOf(DedupeUnavailableError);
      await expect(live.ready()).rejects.toBeInstanceOf(DedupeUnavailableError);
    } finally {
      await live.close();
    }
  });

  it('throws when PostgreSQL is unreachable', async () => {
    const live = createLiveClaimer({ store: 'postgres', url: `postgres://postgres@127.0.0.1:${await freePort()}/nothing`, owner: 'live:invoicer' });
    try {
      await expect(live.claim('ns', 'k')).rejects.toBeInstanceOf(DedupeUnavailableError);
    } finally {
      await live.close();
    }
  });
});

describe('reprise/live on PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => { db = await createTestDatabase('live'); });

  it('creates reprise.dedupe_keys through the migrator and shares its rows with the backfill store', async () => {
    const ns = uniqueName('live');
    const live = createLiveClaimer({ store: 'postgres', url: db.url, owner: 'live:invoicer', namespace: ns, ttl: 3_600_000 });
    const state = await openDatabase(db.url);
    try {
      expect(await live.claim('invoice-corrected:1')).toBe(true);
      const versions = await withClient(db.url, async (c) => (await c.query('select version from reprise.schema_migrations order by version')).rows.map((r) => r.version));
      expect(versions[0]).toBe(1);
      const row = await withClient(db.url, async (c) => (await c.query('select owner, state, expires_at > now() + interval \'59 minutes\' as long from reprise.dedupe_keys where namespace = $1 and key = $2', [ns, 'invoice-corrected:1'])).rows[0]);
      expect(row).toEqual({ owner: 'live:invoicer', state: 'claimed', long: true });
      expect(await live.claim('invoice-corrected:1')).toBe(false);
      await live.confirm('invoice-corrected:1');

      const backfill = new PostgresDedupeStore(state, ns, 60_000);
      expect(await backfill.claim('invoice-corrected:1', RUN, '1')).toEqual({ outcome: 'taken', owner: 'live:invoicer', state: 'applied' });
      expect(await backfill.claim('invoice-corrected:2', RUN, '2')).toEqual({ outcome: 'claimed' });
      expect(await live.claim('invoice-corrected:2')).toBe(false);

      expect(await live.claim('k')).toBe(true);
      await live.release('k');
      expect(await backfill.claim('k', RUN, '3')).toEqual({ outcome: 'claimed' });

      const alo = createLiveClaimer({ store: 'postgres', url: db.url, owner: 'live:alo', namespace: ns, delivery: 'at-least-once' });
      try {
        expect(await alo.claim('a')).toBe(true);
        expect(await alo.claim('a')).toBe(true);
        await alo.confirm('a');
        expect(await alo.claim('a')).toBe(false);
      } finally {
        await alo.close();
      }
      expect(await claim(ns, 'one-shot', { store: 'postgres', url: db.url, owner: 'live:script' })).toBe(true);
      expect(await claim(ns, 'one-shot', { store: 'postgres', url: db.url, owner: 'live:other' })).toBe(false);
    } finally {
      await live.close();
      await state.close();
    }
    await db.drop();
  });
});
