/**
 * A live consumer using `reprise/live` (a separate process, test/fixtures/live/consumer.mjs)
 * runs concurrently with the backfill (`reprise run`, another process) over the same items. Both
 * append to one sink table without unique constraints, for the same dedupe keys. Afterwards each
 * key was applied exactly once in total: never by both, never by neither — with the Redis
 * dedupe store and with the PostgreSQL one.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { crashPlan, seedCrashDb } from '../support/crash.js';
import { startCli } from '../support/cli.js';
import { createTestDatabase, uniqueName, withClient } from '../support/db.js';
import { addDeferredDedupeEffect, chunkLedger, jsonLines, runIdOf } from '../support/runs.js';

const N = 3_000;
const HEAD = 10;
/** Dedupe keys per item, claimed by both sides: alo:{id}, amo:{id} (module effects), sql:{id} (deferred sql). */
const KEYS_PER_ITEM = 3;
const CONSUMER = resolve(import.meta.dirname, '..', 'fixtures', 'live', 'consumer.mjs');

interface ConsumerResult { code: number | null; lines: Array<Record<string, any>>; stderr: string }

function startConsumer(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [CONSUMER, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onLine: ((l: Record<string, any>) => void) | undefined;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const l of jsonLines(stdout)) if (l.ready) onLine?.(l);
  });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const ready = new Promise<Record<string, any> | undefined>((res) => {
    onLine = (l) => { onLine = undefined; res(l); };
    child.on('close', () => res(undefined));
  });
  const done = new Promise<ConsumerResult>((res) => child.on('close', (code) => res({ code, lines: jsonLines(stdout), stderr })));
  return { ready, done, go: () => child.stdin.end('go\n') };
}

describe.each(['redis', 'postgres'] as const)('live consumer and backfill on overlapping items, %s dedupe store', (storeKind) => {
  it('applies each dedupe key exactly once in total', async () => {
    const db = await createTestDatabase(`live_${storeKind}`);
    await seedCrashDb(db.url, N);
    const ns = uniqueName(`live_${storeKind}`);
    const redisUrl = inject('redisUrl');
    // Rate-capped so that the backfill is still running when the consumer is let go.
    const plan = crashPlan({ n: N, namespace: ns, chunkSize: 50, concurrency: 4, itemsPerSecond: 600, dedupeStore: storeKind });
    // Besides the crash scenario's dedupe effects (module effects, applied when called), one
    // applied in the chunk's commit transaction, whose key is claimed at commit.
    addDeferredDedupeEffect(plan);
    const env = { ...process.env, CRASH_DB_URL: db.url, CRASH_REDIS_URL: redisUrl, SINK_DB_URL: db.url };
    const storeUrl = storeKind === 'redis' ? redisUrl : db.url;

    // The consumer claims the highest ids first; the backfill starts from the lowest.
    const consumer = startConsumer([storeKind, storeUrl, ns, 'live:invoicer', String(N), String(HEAD)], env);
    const ready = await consumer.ready;
    expect(ready, 'consumer did not get ready').toMatchObject({ ready: true, applied: KEYS_PER_ITEM * HEAD });
    const backfill = startCli(['--json', 'run', plan.path, '--stage', 'full', '--reports', mkdtempSync(join(tmpdir(), 'reprise-live-'))], env);
    expect(await backfill.waitFor((l) => l.includes('"type":"chunk"'), 90_000), 'backfill committed no chunk').toBeTruthy();
    consumer.go();
    const [live, run] = await Promise.all([consumer.done, backfill.done]);
    expect(live.code, live.stderr).toBe(0);
    expect(run.code, run.stderr).toBe(0);
    const runId = runIdOf(run.stdout)!;
    const liveApplied = live.lines.find((l) => l.done)!.applied as number;

    await withClient(db.url, async (c) => {
      const one = async (sql: string, p: unknown[] = []): Promise<number> => Number((await c.query(sql, p)).rows[0].n);
      const keys = KEYS_PER_ITEM * N;
      const perKey = await c.query(`select dedupe_key, count(*)::int as n from sink where dedupe_key is not null group by dedupe_key having count(*) <> 1`);
      expect(perKey.rows, 'keys applied more than once').toEqual([]);
      expect(await one(`select count(distinct dedupe_key)::int as n from sink where dedupe_key is not null`)).toBe(keys);
      // Which side applied what: the backfill's ledger and the consumer agree with the sink.
      const backfillApplied = await one(`select count(*)::int as n from reprise.ledger where run_id = $1 and policy = 'dedupe' and status = 'applied'`, [runId]);
      const backfillSkipped = await one(`select count(*)::int as n from reprise.ledger where run_id = $1 and policy = 'dedupe' and status = 'skipped-dup'`, [runId]);
      console.log(`${storeKind}: backfill applied ${backfillApplied} keys, live applied ${liveApplied}, backfill skipped ${backfillSkipped} as duplicates`);
      expect(await one(`select count(*)::int as n from sink where effect like 'live:%'`)).toBe(liveApplied);
      expect(await one(`select count(*)::int as n from sink where effect in ('publish_alo', 'publish_amo', 'record_sql')`)).toBe(backfillApplied);
      expect(backfillApplied + liveApplied).toBe(keys);
      expect(backfillSkipped).toBe(liveApplied);
      expect(backfillApplied).toBeGreaterThan(0);
      expect(liveApplied).toBeGreaterThanOrEqual(KEYS_PER_ITEM * HEAD);
      // The deferred effect too: some of its keys went to each side.
      expect(await one(`select count(*)::int as n from sink where effect = 'record_sql'`)).toBeGreaterThan(0);
      expect(await one(`select count(*)::int as n from sink where effect = 'live:sql'`)).toBeGreaterThan(0);
      // Every key the backfill skipped is one the live consumer applied, and the reverse.
      expect(await one(
        `select count(*)::int as n from reprise.ledger l where l.run_id = $1 and l.status = 'skipped-dup'
            and not exists (select 1 from sink s where s.dedupe_key = l.dedupe_key and s.effect like 'live:%')`,
        [runId],
      )).toBe(0);
      // Nothing else went wrong around them: nothing suppressed applied, every item processed once.
      expect(await one(`select count(*)::int as n from sink where effect = 'notify'`)).toBe(0);
      expect(await one(`select count(*)::int as n from (select item from sink where effect = 'write_result' group by item having count(*) <> 1) d`)).toBe(0);
      expect(await one(`select count(*)::int as n from sink where effect = 'write_result'`)).toBe(N);
    });
    const cl = await chunkLedger(db.url, runId, 6);
    expect(cl.committed).toBe(cl.chunks);
    expect(cl.committedIncomplete).toBe(0);
    expect(jsonLines(run.stdout).find((e) => e.type === 'finished')?.outcome).toBe('completed');
    await db.drop();
  });
});
