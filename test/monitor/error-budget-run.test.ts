/**
 * The error budget on a real run through the CLI: a handler that fails a quarter of its items
 * trips `abort.maxErrorRate`, the run stops with exit 4 and a consistent state, the report
 * samples the failures, and once the handler is fixed (an environment variable: same plan,
 * same manifest hash) the next run resumes and completes.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePlanFile } from '../../compiler/compile.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/db.js';
import { checkState, runRow, scenarioPlan, seedItems } from './scenario.js';

const N = 200;

describe('the error budget', () => {
  it('aborts a failing run with exit 4, samples the failures, keeps the state whole, and resumes once fixed', async () => {
    const db = await createTestDatabase('budget');
    await seedItems(db.url, N);
    // 0.1 over 50 items allows 5 failures; failing every 4th item, the 6th failure (item 24) trips it.
    const plan = scenarioPlan({ n: N, concurrency: 1, abort: { maxErrorRate: 0.1, errorWindow: 50, maxConsecutiveErrors: 20 } });
    const { runId, hash } = await compilePlanFile(plan.path);
    const reports = mkdtempSync(join(tmpdir(), 'reprise-reports-'));
    const env = { ...process.env, MON_DB_URL: db.url, NO_COLOR: '1' };

    const res = await runCli(['--json', 'run', plan.path, '--stage', 'full', '--reports', reports], { ...env, MON_FAIL_EVERY: '4' });
    expect(res.code, res.stderr).toBe(4);
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const errors = lines.filter((l) => l.type === 'error');
    expect(errors.map((e) => e.itemKey)).toEqual(['4', '8', '12', '16', '20', '24']);
    expect(errors[0]).toMatchObject({ run: runId, stage: 'full', attempt: 1, final: true, message: 'item 4 refused: MON_FAIL_EVERY=4' });
    const aborted = lines.find((l) => l.type === 'aborted');
    expect(aborted).toMatchObject({ reason: 'error-budget', total: N });
    expect(aborted.detail).toMatch(/^error-rate: 6 of the last 24 items failed \(25\.0%\); abort\.maxErrorRate 0\.1 over abort\.errorWindow 50 allows 5; last error: item 24 refused/);
    expect(res.stderr).toMatch(/error budget exceeded \(error-rate\)/);

    // The report: aborted, why, and every failure sampled — also item 24, whose chunk never committed.
    const report = JSON.parse(readFileSync(join(reports, `${runId}.full.report.json`), 'utf8'));
    expect(report).toMatchObject({ outcome: 'aborted', abort: { reason: 'error-budget' }, manifest: hash });
    expect(report.counts).toMatchObject({ processed: 20, failed: 5, succeeded: 15 });
    expect(report.errors.total).toBe(6);
    expect(report.errors.samples.map((s: { itemKey: string }) => s.itemKey).sort()).toEqual(['12', '16', '20', '24', '4', '8']);
    for (const s of report.errors.samples) expect(s).toMatchObject({ attempt: 1, message: `item ${s.itemKey} refused: MON_FAIL_EVERY=4` });
    expect(readFileSync(join(reports, `${runId}.full.report.md`), 'utf8')).toContain('item 24 refused');

    // Consistent: two whole chunks (their ledger rows and failures complete), the rest pending, no lease held.
    let state = await checkState(db.url, runId);
    expect(state.chunks).toMatchObject({ committed: 2, leased: 0, pending: 18 });
    expect(state).toMatchObject({ liveLeases: 0, incompleteCommitted: [], rowsOfUncommitted: 0, committedItems: 15, committedFailures: 5, sinkRows: 15, sinkDistinct: 15, sinkWithoutLedger: 0, ledgerWithoutSink: 0 });
    expect((await runRow(db.url, runId))!.status).toBe('aborted');

    // Fixed (no MON_FAIL_EVERY): same plan, same hash, same run — it resumes from chunk 3 and completes.
    expect((await compilePlanFile(plan.path)).hash).toBe(hash);
    const again = await runCli(['--json', 'run', plan.path, '--stage', 'full', '--reports', reports], env);
    expect(again.code, again.stderr).toBe(0);
    const finished = again.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.type === 'finished');
    expect(finished).toMatchObject({ run: runId, outcome: 'completed', done: N, failed: 5, total: N });
    state = await checkState(db.url, runId);
    expect(state.chunks).toMatchObject({ committed: 20, leased: 0, pending: 0 });
    expect(state).toMatchObject({ incompleteCommitted: [], committedItems: N - 5, committedFailures: 5, sinkRows: N - 5, sinkDistinct: N - 5, sinkWithoutLedger: 0, ledgerWithoutSink: 0 });
    const done = JSON.parse(readFileSync(join(reports, `${runId}.full.report.json`), 'utf8'));
    expect(done).toMatchObject({ outcome: 'completed', abort: null });
    expect(done.errors.total).toBe(5);
    expect(done.errors.samples).toHaveLength(5);
    await db.drop();
  });
});
