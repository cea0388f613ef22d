/**
 * `reprise abort <run>` from another process while the run is going: the run stops with exit 4,
 * gives back the chunks it was working on, and leaves no chunk half committed (each committed
 * chunk has all of its ledger rows, the others none; no chunk stays leased); the events and
 * `reprise status` say who aborted it. Once the flag is lifted (`reprise resume`), the next
 * `reprise run` resumes and completes, and the sink — no unique constraints — shows that nothing
 * committed before the abort was applied again. With the state in PostgreSQL (the flag in the
 * runs table, NOTIFY) and on the embedded store (the flag file the running process picks up).
 */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { StateStore } from '../../executor/store/store.js';
import { checkInvariants, crashPlan, seedCrashDb } from '../support/crash.js';
import { runCli, startCli } from '../support/cli.js';
import { createTestDatabase, uniqueName, withClient } from '../support/db.js';
import { repoTempDir } from '../support/plans.js';
import { chunkLedger, chunkLedgerOf, committedChunks, jsonLines, runIdOf, waitUntil } from '../support/runs.js';

const N = 3_000;
const ACTOR = 'alice@oncall.example';

describe('abort mid-run', () => {
  it('PostgreSQL state: exits 4 with nothing half committed, says who aborted, and the next run resumes', async () => {
    const db = await createTestDatabase('abort_pg');
    await seedCrashDb(db.url, N);
    const plan = crashPlan({ n: N, namespace: uniqueName('abort'), chunkSize: 50, concurrency: 4, itemsPerSecond: 300 });
    const env = { ...process.env, CRASH_DB_URL: db.url };
    const args = ['--json', 'run', plan.path, '--stage', 'full', '--reports', mkdtempSync(join(tmpdir(), 'reprise-abort-'))];

    const run = startCli(args, env);
    const start = await run.waitFor((l) => l.includes('"type":"start"'), 90_000);
    expect(start, 'the run did not start').toBeTruthy();
    const runId = JSON.parse(start!).run as string;
    await waitUntil(async () => ((await committedChunks(db.url, runId)) >= 2 ? true : undefined), 'two committed chunks');
    const abort = await runCli(['--state', db.url, 'abort', runId, '--reason', 'replica lag on the orders cluster'], { ...env, REPRISE_ACTOR: ACTOR });
    expect(abort.code, abort.stderr).toBe(0);
    expect(abort.stdout).toContain(`abort: ${runId} control=abort`);
    const stopped = await run.done;
    expect(stopped.code, stopped.stderr).toBe(4);
    expect(jsonLines(stopped.stdout).find((e) => e.type === 'aborted')).toMatchObject({ run: runId, reason: 'abort' });

    const mid = await chunkLedger(db.url, runId, 5);
    expect(mid.committed).toBeGreaterThanOrEqual(2);
    expect(mid.committed).toBeLessThan(mid.chunks);
    expect(mid.leased).toBe(0);
    expect(mid.committedIncomplete).toBe(0);
    expect(mid.ledgerOfUncommitted).toBe(0);
    expect(mid.runChunksCommitted).toBe(mid.committed);
    const transactionalBefore = await withClient(db.url, async (c) => Number((await c.query(`select count(*) as n from sink where effect = 'write_result'`)).rows[0].n));
    expect(transactionalBefore).toBe(mid.itemsDone); // exactly the committed chunks' items, nothing of the released ones

    const status = jsonLines((await runCli(['--json', '--state', db.url, 'status', runId], env)).stdout).find((l) => l.level === 'status');
    expect(status).toMatchObject({ run: runId, status: 'aborted', control: 'abort', done: mid.itemsDone });
    const events = await withClient(db.url, async (c) => (await c.query(`select actor, action, detail from reprise.events where run_id = $1 order by id`, [runId])).rows);
    expect(events).toContainEqual({ actor: ACTOR, action: 'abort', detail: { reason: 'replica lag on the orders cluster' } });
    expect(events.find((e) => e.action === 'stopped')?.detail).toMatchObject({ reason: 'abort' });

    const resume = await runCli(['--state', db.url, 'resume', runId], { ...env, REPRISE_ACTOR: ACTOR });
    expect(resume.code, resume.stderr).toBe(0);
    const resumed = await runCli(args, env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(jsonLines(resumed.stdout).find((e) => e.type === 'finished')?.outcome).toBe('completed');
    // The resumed process committed only what was left.
    const seqs = new Set(jsonLines(resumed.stdout).filter((e) => e.type === 'chunk').map((e) => e.seq));
    expect(seqs.size).toBe(mid.chunks - mid.committed);

    const inv = await checkInvariants(db.url, runId, N, new Set());
    expect(inv.itemsProcessed).toBe(N);
    expect(inv.itemsLost).toBe(0);
    expect(inv.suppressApplied).toBe(0);
    expect(inv.transactionalDuplicates).toBe(0);
    expect(inv.committedChunksRerun).toBe(0);
    expect(inv.amoDuplicates).toBe(0);
    expect(inv.aloMissing).toBe(0);
    // A clean abort leaves no claim unconfirmed: nothing is delivered twice, nothing lost.
    expect(inv.aloRedelivered).toBe(0);
    expect(inv.amoLost).toBe(0);
    const end = await chunkLedger(db.url, runId, 5);
    expect(end.committed).toBe(end.chunks);
    expect(end.committedIncomplete).toBe(0);
    expect(end.itemsDone).toBe(N);
    await db.drop();
  });

  it('embedded state: the abort goes through the flag file; exits 4, nothing half committed, the next run resumes', async () => {
    const db = await createTestDatabase('abort_embedded');
    await seedCrashDb(db.url, N);
    const dir = repoTempDir('abort-embedded');
    const fixtures = resolve(import.meta.dirname, '..', 'fixtures', 'crash');
    copyFileSync(join(fixtures, 'sink.ts'), join(dir, 'sink.ts'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    writeFileSync(join(dir, 'handler.ts'), [
      "import { defineHandler } from 'reprise';",
      "export default defineHandler<{ id: string; amount: string }, 'upsert_total' | 'notify' | 'publish_alo' | 'publish_amo'>(async (row, ctx) => {",
      '  await ctx.effects.upsert_total({ id: row.id, amount: row.amount });',
      '  await ctx.effects.notify({ id: row.id });',
      '  await ctx.effects.publish_alo({ id: row.id });',
      '  await ctx.effects.publish_amo({ id: row.id });',
      '});',
      '',
    ].join('\n'));
    // The crash scenario without the checkpoint connection (the state is embedded), hence
    // without its non-idempotent transactional effect.
    const data = structuredClone(crashPlan({ n: N, namespace: uniqueName('abort'), chunkSize: 50, concurrency: 4, itemsPerSecond: 300 }).data) as Record<string, any>;
    data.name = 'abort-embedded';
    data.processing.handler = './handler.ts';
    data.sideEffects = data.sideEffects.filter((e: { name: string }) => e.name !== 'write_result');
    delete data.checkpoint;
    const planPath = join(dir, 'abort-embedded.yaml');
    writeFileSync(planPath, stringify(data));
    const state = join(mkdtempSync(join(tmpdir(), 'reprise-abort-state-')), 'state');
    const env = { ...process.env, CRASH_DB_URL: db.url };
    const args = ['--json', '--state', state, 'run', planPath, '--stage', 'full', '--reports', mkdtempSync(join(tmpdir(), 'reprise-abort-'))];

    const run = startCli(args, env);
    const start = await run.waitFor((l) => l.includes('"type":"start"'), 90_000);
    expect(start, 'the run did not start').toBeTruthy();
    const runId = JSON.parse(start!).run as string;
    expect(await run.waitFor((l) => l.includes('"type":"chunk"'), 90_000)).toBeTruthy();
    expect(await run.waitFor((l) => l.includes('"type":"chunk"'), 90_000)).toBeTruthy();
    // The store is held by the running process: abort drops a flag file it applies within a second.
    const abort = await runCli(['--state', state, 'abort', runId, '--reason', 'wrong window'], { ...env, REPRISE_ACTOR: ACTOR });
    expect(abort.code, abort.stderr).toBe(0);
    expect(abort.stdout).toContain(`abort: requested for ${runId}`);
    const stopped = await run.done;
    expect(stopped.code, stopped.stderr).toBe(4);
    expect(jsonLines(stopped.stdout).find((e) => e.type === 'aborted')).toMatchObject({ run: runId, reason: 'abort' });

    const store = await StateStore.open(state);
    let mid;
    try {
      mid = await chunkLedgerOf((sql, p) => store.db.query(sql, p), runId, 4);
      const events = await store.events(runId);
      expect(events.find((e) => e.action === 'abort')).toMatchObject({ actor: ACTOR, detail: { reason: 'wrong window' } });
      expect((await store.getRun(runId))?.status).toBe('aborted');
    } finally {
      await store.close();
    }
    expect(mid.committed).toBeGreaterThanOrEqual(2);
    expect(mid.committed).toBeLessThan(mid.chunks);
    expect(mid.leased).toBe(0);
    expect(mid.committedIncomplete).toBe(0);
    expect(mid.ledgerOfUncommitted).toBe(0);
    const statusCli = await runCli(['--json', '--state', state, 'status', runId], env);
    const status = jsonLines(statusCli.stdout).find((l) => l.level === 'status');
    expect(status, statusCli.stdout + statusCli.stderr).toMatchObject({ run: runId, status: 'aborted', control: 'abort', done: mid.itemsDone });

    expect((await runCli(['--state', state, 'resume', runId], { ...env, REPRISE_ACTOR: ACTOR })).code).toBe(0);
    const resumed = await runCli(args, env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(runIdOf(resumed.stdout)).toBe(runId);
    expect(jsonLines(resumed.stdout).filter((e) => e.type === 'chunk')).toHaveLength(mid.chunks - mid.committed);

    // Each dedupe effect exactly once per item across the abort, nothing suppressed applied.
    await withClient(db.url, async (c) => {
      const one = async (sql: string): Promise<number> => Number((await c.query(sql)).rows[0].n);
      expect(await one(`select count(*) as n from sink where effect = 'notify'`)).toBe(0);
      for (const effect of ['publish_alo', 'publish_amo']) {
        expect(await one(`select count(*) as n from (select item from sink where effect = '${effect}' group by item having count(*) <> 1) d`)).toBe(0);
        expect(await one(`select count(distinct item) as n from sink where effect = '${effect}'`)).toBe(N);
      }
      expect(await one(`select count(*) as n from totals`)).toBe(N);
    });
    const after = await StateStore.open(state);
    try {
      const end = await chunkLedgerOf((sql, p) => after.db.query(sql, p), runId, 4);
      expect(end.committed).toBe(end.chunks);
      expect(end.committedIncomplete).toBe(0);
      expect(end.itemsDone).toBe(N);
      expect((await after.getRun(runId))?.status).toBe('completed');
    } finally {
      await after.close();
    }
    await db.drop();
  });
});
