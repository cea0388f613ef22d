/**
 * Several workers on one run, state in PostgreSQL: two `reprise run` processes joining the same
 * run, and `--workers 4` in one process. Every chunk is committed exactly once (each process
 * reports the chunks it committed; the two lists are disjoint and cover the run), every item is
 * done, and the sink — no unique constraints — shows each effect applied exactly as its policy
 * says. Then `reprise status` and `reprise ledger --json` are checked, as subprocesses, against
 * the finished run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkInvariants, crashPlan, seedCrashDb } from '../support/crash.js';
import { runCli, startCli } from '../support/cli.js';
import { createTestDatabase, uniqueName } from '../support/db.js';
import { chunkLedger, committedSeqs, jsonLines, runIdOf } from '../support/runs.js';

const N = 4_000;
const CHUNK = 50;
const CALLS_PER_ITEM = 5;

function expectExactlyOnce(inv: Awaited<ReturnType<typeof checkInvariants>>): void {
  expect(inv.itemsProcessed).toBe(N);
  expect(inv.itemsLost).toBe(0);
  expect(inv.outsideWindow).toBe(0);
  expect(inv.suppressApplied).toBe(0);
  expect(inv.transactionalDuplicates).toBe(0);
  expect(inv.amoDuplicates).toBe(0);
  expect(inv.amoLost).toBe(0);
  expect(inv.aloMissing).toBe(0);
  expect(inv.aloRedelivered).toBe(0);
  expect(inv.committedChunksRerun).toBe(0);
  expect(inv.ledgerWithoutSink).toBe(0);
  expect(inv.sinkWithoutLedger).toBe(0);
}

describe('several workers on one run (PostgreSQL state)', () => {
  it('two processes join one run: no chunk committed twice, every item done; status and ledger --json report it', async () => {
    const db = await createTestDatabase('workers2');
    await seedCrashDb(db.url, N);
    const plan = crashPlan({ n: N, namespace: uniqueName('workers2'), chunkSize: CHUNK, concurrency: 4 });
    const reports = mkdtempSync(join(tmpdir(), 'reprise-workers-'));
    const env = { ...process.env, CRASH_DB_URL: db.url, REPRISE_ACTOR: 'oncall@test' };
    const args = ['--json', 'run', plan.path, '--stage', 'full', '--reports', reports];

    // A starts; once it announces the run, the run is paused so that B is sure to join while
    // there is work left; both wait paused, then resume together.
    const a = startCli(args, env);
    const startA = await a.waitFor((l) => l.includes('"type":"start"'), 90_000);
    expect(startA, 'process A did not start').toBeTruthy();
    const runId = JSON.parse(startA!).run as string;
    const pausedA = a.waitFor((l) => l.includes('"type":"paused"'), 90_000);
    const pause = await runCli(['--state', db.url, 'pause', runId, '--reason', 'let B join'], env);
    expect(pause.code, pause.stderr).toBe(0);
    expect(await pausedA).toBeTruthy();
    const b = startCli(args, env);
    expect(await b.waitFor((l) => l.includes('"type":"paused"'), 90_000), 'process B did not join paused').toBeTruthy();
    const resume = await runCli(['--state', db.url, 'resume', runId], env);
    expect(resume.code, resume.stderr).toBe(0);

    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    expect(runIdOf(rb.stdout)).toBe(runId);
    const outcomes = [ra, rb].map((r) => jsonLines(r.stdout).find((e) => e.type === 'finished')?.outcome).sort();
    expect(outcomes).toEqual(['completed', 'joined']);

    const seqA = committedSeqs(ra.stdout);
    const seqB = committedSeqs(rb.stdout);
    const chunksTotal = N / CHUNK;
    console.log(`two processes: A committed ${seqA.length} chunks, B ${seqB.length}, of ${chunksTotal}`);
    expect(seqA.length).toBeGreaterThan(0);
    expect(seqB.length).toBeGreaterThan(0);
    const all = [...seqA, ...seqB];
    expect(new Set(all).size).toBe(all.length); // no chunk committed by both, nor twice by one
    const cl = await chunkLedger(db.url, runId, CALLS_PER_ITEM);
    expect(cl.committed).toBe(cl.chunks);
    expect(all.length).toBe(cl.chunks);
    expect(cl.chunks).toBe(chunksTotal);
    expect(cl.runChunksCommitted).toBe(cl.chunks); // one increment per commit
    expect(cl.leased + cl.pending).toBe(0);
    expect(cl.committedIncomplete).toBe(0);
    expect(cl.ledgerOfUncommitted).toBe(0);
    expect(cl.itemsDone).toBe(N);
    expectExactlyOnce(await checkInvariants(db.url, runId, N, new Set()));

    // The control actions are in the events with who did them.
    const statusJson = await runCli(['--json', '--state', db.url, 'status', runId], env);
    expect(statusJson.code, statusJson.stderr).toBe(0);
    const status = jsonLines(statusJson.stdout).find((l) => l.level === 'status')!;
    expect(status).toMatchObject({ run: runId, stage: 'full', status: 'completed', control: 'run', done: N, total: N, failed: 0 });
    expect(status.chunks.committed).toBe(status.chunks.total);
    const statusText = await runCli(['--state', db.url, 'status'], env);
    expect(statusText.code).toBe(0);
    expect(statusText.stdout).toContain(`${runId}  full  completed  ${N}/${N} (100.0%)`);

    const ledger = await runCli(['--json', '--state', db.url, 'ledger', runId, '--effect', 'publish_amo', '--limit', String(N * 2)], env);
    expect(ledger.code, ledger.stderr).toBe(0);
    const rows = jsonLines(ledger.stdout).filter((l) => l.level === 'ledger');
    expect(rows).toHaveLength(N);
    expect(new Set(rows.map((r) => r.item)).size).toBe(N);
    expect(rows.every((r) => r.effect === 'publish_amo' && r.status === 'applied' && r.policy === 'dedupe' && r.dedupeKey === `amo:${r.item}` && r.run === runId)).toBe(true);
    const suppressed = await runCli(['--json', '--state', db.url, 'ledger', runId, '--status', 'suppressed', '--item', '1', '2', '3'], env);
    expect(jsonLines(suppressed.stdout).filter((l) => l.level === 'ledger').map((l) => [l.item, l.effect, l.status]).sort()).toEqual([
      ['1', 'notify', 'suppressed'], ['2', 'notify', 'suppressed'], ['3', 'notify', 'suppressed'],
    ]);
    const missing = await runCli(['--json', '--state', db.url, 'ledger', 'nope.r1.00000000'], env);
    expect(missing.code).toBe(2);
    expect(missing.stdout + missing.stderr).toContain('RUN_NOT_FOUND');
    await db.drop();
  });

  it('--workers 4 in one process: every chunk committed once, every item done', async () => {
    const db = await createTestDatabase('workers4');
    await seedCrashDb(db.url, N);
    const plan = crashPlan({ n: N, namespace: uniqueName('workers4'), chunkSize: CHUNK, concurrency: 4 });
    const reports = mkdtempSync(join(tmpdir(), 'reprise-workers-'));
    const env = { ...process.env, CRASH_DB_URL: db.url };
    const res = await runCli(['--json', 'run', plan.path, '--stage', 'full', '--reports', reports, '--workers', '4'], env);
    expect(res.code, res.stderr).toBe(0);
    const runId = runIdOf(res.stdout)!;
    expect(jsonLines(res.stdout).find((e) => e.type === 'start')?.workers).toBe(4);
    const seqs = committedSeqs(res.stdout);
    expect(new Set(seqs).size).toBe(seqs.length);
    const cl = await chunkLedger(db.url, runId, CALLS_PER_ITEM);
    expect(seqs.length).toBe(cl.chunks);
    expect(cl.committed).toBe(cl.chunks);
    expect(cl.committedIncomplete).toBe(0);
    expect(cl.ledgerOfUncommitted).toBe(0);
    expect(cl.runChunksCommitted).toBe(cl.chunks);
    expect(cl.runChunksTotal).toBe(cl.chunks);
    expect(cl.itemsDone).toBe(N);
    expectExactlyOnce(await checkInvariants(db.url, runId, N, new Set()));
    await db.drop();
  });
});
