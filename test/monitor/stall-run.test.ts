/**
 * Stalls of real runs: a handler that blocks, a real webhook receiver, the plan's onStall taken.
 * `pause` runs in process (the test holds the handler's gate and then opens it); `abort` runs
 * the CLI as a user does (`node bin/reprise.js run … --stage full`, needs the build).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compilePlanFile } from '../../compiler/compile.js';
import { runStage } from '../../executor/stages/run.js';
import { StateStore } from '../../executor/store/store.js';
import { runCli, startCli } from '../support/cli.js';
import { createTestDatabase, withClient, type TestDatabase } from '../support/db.js';
import { startHttpServer, type TestHttpServer } from '../support/http.js';
import { checkState, runRow, scenarioPlan, seedItems, until } from './scenario.js';

const N = 100;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(onStall: 'pause' | 'abort'): Promise<{ db: TestDatabase; hook: TestHttpServer; plan: string; runId: string; env: NodeJS.ProcessEnv; reports: string }> {
  const db = await createTestDatabase(`stall_${onStall}`);
  await seedItems(db.url, N);
  const hook = await startHttpServer();
  cleanups.push(() => hook.close());
  const plan = scenarioPlan({ n: N, abort: { stallAfter: '2s', onStall, alert: { webhook: { env: 'MON_ALERT_URL' } } } });
  const { runId } = await compilePlanFile(plan.path);
  const env = { ...process.env, MON_DB_URL: db.url, MON_ALERT_URL: `${hook.url}/hooks/stall`, NO_COLOR: '1' };
  return { db, hook, plan: plan.path, runId, env, reports: mkdtempSync(join(tmpdir(), 'reprise-reports-')) };
}

describe('a stalled run', () => {
  it('onStall: pause — alerts the webhook, pauses every worker through the control flag, and resumes cleanly', async () => {
    const { db, hook, plan, runId, env, reports } = await setup('pause');
    let open!: () => void;
    (globalThis as { __monitorTestGate?: Promise<void> }).__monitorTestGate = new Promise<void>((r) => (open = r));
    process.env.MON_BLOCK_AFTER = '30';
    cleanups.push(async () => {
      open();
      delete process.env.MON_BLOCK_AFTER;
      delete (globalThis as { __monitorTestGate?: Promise<void> }).__monitorTestGate;
    });
    const started = Date.now();
    const running = runStage({ plan, stage: 'full', stateUrl: 'unused://', env, reportsDir: reports });

    // Chunks 1-3 (items 1-30) commit; items 31+ block; 2 s later the stall watch pauses the run.
    const paused = await until(async () => {
      const r = await runRow(db.url, runId);
      return r?.control === 'pause' && r.status === 'paused' ? r : undefined;
    }, 20_000, 'the run to be paused');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(Number(paused.items_done)).toBe(30);

    const events = await withClient(db.url, async (c) => (await c.query(`select actor, action, detail from reprise.events where run_id = $1 and action = 'pause'`, [runId])).rows);
    expect(events).toHaveLength(1);
    expect(events[0].actor).toBe('reprise:stall-watch');
    expect(events[0].detail.reason).toMatch(/^no committed progress for [0-9]+s \(abort\.stallAfter is 2s; last progress 20\d\d-/);

    await until(async () => hook.requests.length > 0, 15_000, 'the webhook');
    expect(hook.requests).toHaveLength(1);
    const req = hook.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hooks/stall');
    expect(req.headers['content-type']).toBe('application/json');
    const body = req.json as Record<string, unknown>;
    expect(body).toMatchObject({ type: 'reprise.stall', run: runId, stage: 'full', plan: 'monitor-test', revision: 1, onStall: 'pause', status: 'paused', howToAbort: `reprise abort ${runId}` });
    expect(Date.parse(body.lastProgressAt as string)).toBeGreaterThanOrEqual(started - 1000);
    expect(body.stalledForSeconds).toBeGreaterThanOrEqual(2);
    expect(body.text).toContain(`reprise abort ${runId}`);

    // Paused: the blocked items finish, their chunk is given back untouched, nothing else starts.
    open();
    await until(async () => (await checkState(db.url, runId)).chunks.leased === 0, 10_000, 'the chunk to be given back');
    let state = await checkState(db.url, runId);
    expect(state.chunks).toMatchObject({ committed: 3, leased: 0, pending: 7 });
    expect(state.sinkRows).toBe(30);
    expect(state.rowsOfUncommitted).toBe(0);

    const store = await StateStore.open(db.url);
    try {
      await store.setControl(runId, 'run', 'operator@example.com', 'unblocked');
    } finally {
      await store.close();
    }
    const out = await running;
    expect(out.exitCode, JSON.stringify(out.stop)).toBe(0);
    expect(out.outcome).toBe('completed');
    state = await checkState(db.url, runId);
    expect(state).toMatchObject({ liveLeases: 0, incompleteCommitted: [], rowsOfUncommitted: 0, committedItems: N, sinkRows: N, sinkDistinct: N, sinkWithoutLedger: 0, ledgerWithoutSink: 0 });
    expect(hook.requests).toHaveLength(1);
    const report = JSON.parse(readFileSync(out.reportFiles!.json, 'utf8'));
    expect(report.counts.processed).toBe(N);
    await db.drop();
  });

  it('onStall: abort — alerts, stops with exit 4 from the CLI, leaves a consistent state, and the next run completes', async () => {
    const { db, hook, plan, runId, env, reports } = await setup('abort');
    const cli = startCli(['--json', 'run', plan, '--stage', 'full', '--reports', reports], { ...env, MON_BLOCK_AFTER: '30' });
    const res = await cli.done;
    expect(res.code, res.stderr).toBe(4);

    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const types = lines.map((l) => l.type ?? l.level);
    expect(types[0]).toBe('start');
    expect(types).toContain('stalled');
    const stalled = lines.find((l) => l.type === 'stalled');
    expect(stalled).toMatchObject({ run: runId, stage: 'full', action: 'abort', webhook: true });
    expect(stalled.stalledForSeconds).toBeGreaterThanOrEqual(2);
    const aborted = lines.find((l) => l.type === 'aborted');
    expect(aborted).toMatchObject({ run: runId, stage: 'full', reason: 'stall', done: 30, total: N });
    expect(types.indexOf('stalled')).toBeLessThan(types.indexOf('aborted'));
    expect(lines.at(-1)).toMatchObject({ level: 'result', exitCode: 4, stop: { reason: 'stall' } });
    expect(res.stderr).toMatch(/stalled: no committed progress/);

    expect(hook.requests).toHaveLength(1);
    expect(hook.requests[0]!.json).toMatchObject({ type: 'reprise.stall', run: runId, stage: 'full', onStall: 'abort', status: 'aborting', howToAbort: `reprise abort ${runId}` });

    // Consistent: three whole chunks, the blocked one given back, no live lease, the flag and who set it recorded.
    let state = await checkState(db.url, runId);
    expect(state).toMatchObject({ liveLeases: 0, incompleteCommitted: [], rowsOfUncommitted: 0, committedItems: 30, sinkRows: 30, sinkDistinct: 30 });
    expect(state.chunks).toMatchObject({ committed: 3, leased: 0, pending: 7 });
    const row = (await runRow(db.url, runId))!;
    expect(row).toMatchObject({ control: 'abort', status: 'aborted' });
    const events = await withClient(db.url, async (c) => (await c.query(`select actor, action, detail from reprise.events where run_id = $1 order by id`, [runId])).rows);
    expect(events.find((e) => e.action === 'abort')).toMatchObject({ actor: 'reprise:stall-watch' });
    expect(events.find((e) => e.action === 'stopped')?.detail).toMatchObject({ reason: 'stall' });
    const report = JSON.parse(readFileSync(join(reports, `${runId}.full.report.json`), 'utf8'));
    expect(report.outcome).toBe('aborted');
    expect(report.abort.reason).toBe('stall');

    // The abort flag stays until someone clears it; then the same plan (same hash), the handler
    // no longer blocking, resumes the run and completes it.
    const resumed = await runCli(['--state', db.url, 'resume', runId, '--reason', 'the blocking target is back'], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`resume: ${runId} control=run`);
    const again = await runCli(['run', plan, '--stage', 'full', '--reports', reports], env);
    expect(again.code, again.stderr).toBe(0);
    state = await checkState(db.url, runId);
    expect(state).toMatchObject({ liveLeases: 0, incompleteCommitted: [], rowsOfUncommitted: 0, committedItems: N, sinkRows: N, sinkDistinct: N, sinkWithoutLedger: 0, ledgerWithoutSink: 0 });
    expect((await runRow(db.url, runId))!).toMatchObject({ control: 'run', status: 'completed' });
    expect(hook.requests).toHaveLength(1);
    await db.drop();
  });
});
