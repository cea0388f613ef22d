/**
 * A clean abort lets the items in flight finish: an effect under way when `reprise abort` lands
 * completes and has its claim confirmed before the chunk is given back, so the resumed run finds
 * it applied and does not apply it again — even for an `at-least-once` effect, which re-applies
 * only claims a crash left unconfirmed. (An effect slower than the stop itself shows it: before,
 * the stop abandoned the handler, the run closed its dedupe store, and the effect landed after
 * it with its claim unconfirmed.)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seedCrashDb } from '../support/crash.js';
import { runCli, startCli } from '../support/cli.js';
import { createTestDatabase, uniqueName, withClient } from '../support/db.js';
import { repoTempDir, writePlan } from '../support/plans.js';
import { chunkLedger, runIdOf } from '../support/runs.js';

describe('abort with effects in flight', () => {
  it('in-flight items finish: an effect under way when the abort lands is confirmed, and not applied again on resume', async () => {
    const n = 32;
    const db = await createTestDatabase('abort_inflight');
    await seedCrashDb(db.url, n);
    const ns = uniqueName('inflight');
    // One slow at-least-once effect: an abort always finds items in the middle of it.
    const plan = writePlan('abort-inflight', {
      reprise: 1,
      name: 'abort-inflight',
      revision: 1,
      owner: 'reliability',
      author: 'tester@example.com',
      reason: 'An abort that lands while effects are being applied.',
      connections: { db: { env: 'CRASH_DB_URL' } },
      selection: {
        connection: 'db',
        query: 'select id from items where created_at >= :window_start and created_at < :window_end',
        key: 'id',
        window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' },
        expect: { min: n, max: n },
      },
      processing: { handler: './handler.ts', timeoutMs: 15_000, retries: { max: 0, backoffMs: 20 } },
      sideEffects: [
        { name: 'publish', kind: 'module', module: './slow.ts', export: 'publish', args: ['id'], backfill: 'dedupe', live: 'dedupe', dedupeKey: 'alo:{id}', delivery: 'at-least-once' },
      ],
      dedupe: { store: 'postgres', connection: 'db', namespace: ns, ttl: '1d' },
      rate: { itemsPerSecond: 1000, concurrency: 4, chunkSize: 8, maxConnections: 6 },
      canary: { size: 4, pick: 'first' },
      checkpoint: { connection: 'db' },
    }, {
      'handler.ts': "import { defineHandler } from 'reprise';\nexport default defineHandler<{ id: string }, 'publish'>(async (row, ctx) => { await ctx.effects.publish({ id: row.id }); });\n",
      'slow.ts': [
        "import pg from 'pg';",
        'const pool = new pg.Pool({ connectionString: process.env.CRASH_DB_URL, max: 4 });',
        "pool.on('error', () => undefined);",
        'export async function publish(args: { id: string }): Promise<void> {',
        '  await new Promise((r) => setTimeout(r, 2000));',
        "  await pool.query(\"insert into sink (effect, item, dedupe_key, at) values ('publish', $1, $2, clock_timestamp())\", [args.id, `alo:${args.id}`]);",
        '}',
        '',
      ].join('\n'),
    }, repoTempDir('abort-inflight'));
    const env = { ...process.env, CRASH_DB_URL: db.url };
    const args = ['--json', 'run', plan.path, '--stage', 'full', '--reports', mkdtempSync(join(tmpdir(), 'reprise-abort-'))];

    const run = startCli(args, env);
    const first = await run.waitFor((l) => l.includes('"type":"chunk"'), 90_000);
    expect(first, 'no chunk committed').toBeTruthy();
    const runId = runIdOf(first!) ?? JSON.parse(first!).run;
    expect((await runCli(['--state', db.url, 'abort', runId], { ...env, REPRISE_ACTOR: 'alice@oncall.example' })).code).toBe(0);
    const stopped = await run.done;
    expect(stopped.code, stopped.stderr).toBe(4);

    // Every claim taken before the abort is confirmed: the items in flight finished their effect.
    const unconfirmed = await withClient(db.url, async (c) => (await c.query(`select key from reprise.dedupe_keys where namespace = $1 and state = 'claimed'`, [ns])).rows.map((r) => r.key));
    expect(unconfirmed).toEqual([]);
    const mid = await chunkLedger(db.url, runId, 1);
    expect(mid.leased).toBe(0);
    expect(mid.committed).toBeLessThan(mid.chunks);

    expect((await runCli(['--state', db.url, 'resume', runId], env)).code).toBe(0);
    const resumed = await runCli(args, env);
    expect(resumed.code, resumed.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      const dup = (await c.query(`select item, count(*)::int as n from sink where effect = 'publish' group by item having count(*) <> 1`)).rows;
      expect(dup, 'applied twice across a clean abort').toEqual([]);
      expect(Number((await c.query(`select count(distinct item) as n from sink where effect = 'publish'`)).rows[0].n)).toBe(n);
    });
    await db.drop();
  });
});
