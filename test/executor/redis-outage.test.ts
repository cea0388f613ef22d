/**
 * The Redis dedupe store dies mid-run. The run fails closed: it stops applying dedupe effects,
 * gives its chunks back and exits 4; nothing was applied without a claim (every dedupe effect in
 * the sink has its key in Redis). While Redis is down a new run refuses before processing. Once
 * Redis is back, the next run resumes and completes, and the sink (no unique constraints) holds
 * exactly what the policies allow: nothing suppressed, each transactional effect once,
 * at-most-once never twice, at-least-once at least once, and a second application (or a missing
 * one for at-most-once) only for a claim the outage left unconfirmed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisDedupeKey } from '../../executor/effects/dedupe.js';
import { checkInvariants, crashPlan, seedCrashDb } from '../support/crash.js';
import { runCli, startCli } from '../support/cli.js';
import { createTestDatabase, uniqueName, withClient } from '../support/db.js';
import { addDeferredDedupeEffect, chunkLedger, committedChunks, jsonLines, waitUntil } from '../support/runs.js';
import { startRedis, type RedisServer } from '../support/servers.js';

const N = 4_000;

describe('Redis dedupe store stopped mid-run', () => {
  let server: RedisServer;
  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server?.destroy(); });

  it('fails closed (exit 4, nothing applied unguarded), then resumes and completes once Redis is back', async () => {
    const db = await createTestDatabase('redis_outage');
    await seedCrashDb(db.url, N);
    const ns = uniqueName('outage');
    const plan = crashPlan({ n: N, namespace: ns, chunkSize: 50, concurrency: 4, itemsPerSecond: 400, dedupeStore: 'redis' });
    // Also a dedupe effect applied in the commit transaction, its Redis claim taken at commit.
    addDeferredDedupeEffect(plan);
    const env = { ...process.env, CRASH_DB_URL: db.url, CRASH_REDIS_URL: server.url };
    const args = ['--json', 'run', plan.path, '--stage', 'full', '--reports', mkdtempSync(join(tmpdir(), 'reprise-outage-'))];

    const first = startCli(args, env);
    const start = await first.waitFor((l) => l.includes('"type":"start"'), 90_000);
    expect(start, 'the run did not start').toBeTruthy();
    const runId = JSON.parse(start!).run as string;
    await waitUntil(async () => ((await committedChunks(db.url, runId)) >= 2 ? true : undefined), 'two committed chunks');
    await server.stop();
    const stopped = await first.done;
    expect(stopped.code, stopped.stderr).toBe(4);
    const aborted = jsonLines(stopped.stdout).find((e) => e.type === 'aborted');
    expect(aborted).toMatchObject({ run: runId, reason: 'fail-closed' });
    expect(aborted!.detail).toMatch(/dedupe store .* unreachable/);

    const mid = await chunkLedger(db.url, runId, 6);
    expect(mid.committed).toBeGreaterThanOrEqual(2);
    expect(mid.committed).toBeLessThan(mid.chunks);
    expect(mid.leased).toBe(0);
    expect(mid.committedIncomplete).toBe(0);
    expect(mid.ledgerOfUncommitted).toBe(0);
    const statusRow = await withClient(db.url, async (c) => (await c.query('select status, control from reprise.runs where id = $1', [runId])).rows[0]);
    expect(statusRow).toEqual({ status: 'paused', control: 'run' });

    // Still down: a new run refuses before processing anything (the target fingerprint needs Redis).
    const sinkBefore = await withClient(db.url, async (c) => Number((await c.query('select count(*) as n from sink')).rows[0].n));
    const refused = await runCli(args, env);
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    expect(refused.stdout + refused.stderr).toMatch(/TARGET_UNREACHABLE/);
    expect(await withClient(db.url, async (c) => Number((await c.query('select count(*) as n from sink')).rows[0].n))).toBe(sinkBefore);

    await server.start();
    const redis = new Redis(server.url);
    try {
      // Nothing applied unguarded: every dedupe effect in the sink has its claim in Redis, by this run.
      const applied = await withClient(db.url, async (c) => (await c.query(`select distinct dedupe_key from sink where effect in ('publish_alo', 'publish_amo', 'record_sql')`)).rows.map((r) => r.dedupe_key as string));
      expect(applied.length).toBeGreaterThan(0);
      const claims = await redis.mget(applied.map((k) => redisDedupeKey(ns, k)));
      const unguarded = applied.filter((_, i) => claims[i] === null || JSON.parse(claims[i]!).o !== runId);
      expect(unguarded).toEqual([]);
      const unconfirmed = new Set<string>();
      for (const k of await redis.keys(redisDedupeKey(ns, '*'))) {
        if (JSON.parse((await redis.get(k))!).s === 'claimed') unconfirmed.add(k.slice(redisDedupeKey(ns, '').length));
      }

      const resumed = await runCli(args, env);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(jsonLines(resumed.stdout).find((e) => e.type === 'finished')?.outcome).toBe('completed');
      const inv = await checkInvariants(db.url, runId, N, unconfirmed);
      console.log(`redis outage: ${mid.committed}/${mid.chunks} chunks committed before it, ${unconfirmed.size} claims left unconfirmed`, inv);
      expect(inv.itemsProcessed).toBe(N);
      expect(inv.itemsLost).toBe(0);
      expect(inv.outsideWindow).toBe(0);
      expect(inv.suppressApplied).toBe(0);
      expect(inv.transactionalDuplicates).toBe(0);
      expect(inv.amoDuplicates).toBe(0);
      expect(inv.amoLostWithoutUnconfirmedClaim).toBe(0);
      expect(inv.aloMissing).toBe(0);
      expect(inv.aloRedeliveredWithoutUnconfirmedClaim).toBe(0);
      expect(inv.committedChunksRerun).toBe(0);
      expect(inv.sinkWithoutLedger).toBe(0);
      // The effect applied at commit is exactly once per item, whatever the outage left claimed:
      // its chunk either committed (applied, claim confirmed after) or did not (never applied).
      await withClient(db.url, async (c) => {
        expect((await c.query(`select item from sink where effect = 'record_sql' group by item having count(*) <> 1`)).rows).toEqual([]);
        expect(Number((await c.query(`select count(distinct item) as n from sink where effect = 'record_sql'`)).rows[0].n)).toBe(N);
      });
      const end = await chunkLedger(db.url, runId, 6);
      expect(end.committed).toBe(end.chunks);
      expect(end.committedIncomplete).toBe(0);
      expect(end.itemsDone).toBe(N);
      // Every dedupe effect's key is now confirmed in Redis, except at-most-once keys the outage left unconfirmed.
      const left: string[] = [];
      for (const k of await redis.keys(redisDedupeKey(ns, '*'))) {
        const key = k.slice(redisDedupeKey(ns, '').length);
        if (JSON.parse((await redis.get(k))!).s !== 'applied' && !(key.startsWith('amo:') && unconfirmed.has(key))) left.push(key);
      }
      expect(left).toEqual([]);
    } finally {
      redis.disconnect();
    }
    await db.drop();
  });
});
