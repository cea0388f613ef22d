/**
 * Pause, status and abort of a run on the embedded store, as an operator does it from another
 * terminal: the running process holds the store, so the control commands leave flag files that
 * it applies within a second (recorded as the operator), and `status` reads its snapshot.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePlanFile } from '../../compiler/compile.js';
import { StateStore } from '../../executor/store/store.js';
import { runCli, startCli } from '../support/cli.js';
import { createTestDatabase, withClient } from '../support/db.js';
import { scenarioPlan, seedItems } from './scenario.js';

const N = 200;

describe('controlling a run on the embedded store', () => {
  it('pause and abort from another process go through flag files, are recorded as the operator, and leave a whole state', async () => {
    const db = await createTestDatabase('embedded');
    await seedItems(db.url, N);
    const plan = scenarioPlan({ n: N, embedded: true });
    const { runId } = await compilePlanFile(plan.path);
    const state = join(mkdtempSync(join(tmpdir(), 'reprise-state-')), 'state');
    const reports = mkdtempSync(join(tmpdir(), 'reprise-reports-'));
    const env = { ...process.env, MON_DB_URL: db.url, NO_COLOR: '1', REPRISE_ACTOR: 'operator@example.com' };

    const cli = startCli(['--json', '--state', state, 'run', plan.path, '--stage', 'full', '--reports', reports], { ...env, MON_DELAY_MS: '40' });
    expect(await cli.waitFor((l) => l.includes('"type":"chunk"'), 30_000)).toBeDefined();

    const pause = await runCli(['--state', state, 'pause', runId, '--reason', 'checking the replica'], env);
    expect(pause.code, pause.stderr).toBe(0);
    expect(pause.stdout).toContain(`pause: requested for ${runId} (the running process applies it within a second)`);
    expect(await cli.waitFor((l) => l.includes('"type":"paused"'), 10_000)).toBeDefined();

    // status, while the run holds the store: the running process's snapshot.
    await new Promise((r) => setTimeout(r, 1_500));
    const status = await runCli(['--json', '--state', state, 'status', runId], env);
    expect(status.code, status.stderr).toBe(0);
    const snap = JSON.parse(status.stdout.trim());
    expect(snap).toMatchObject({ source: 'running-process', runId, stage: 'full', status: 'paused', control: 'pause', total: N });
    // Paused: nothing commits any more.
    const committedAtPause = (await runCli(['--json', '--state', state, 'status', runId], env)).stdout;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(JSON.parse((await runCli(['--json', '--state', state, 'status', runId], env)).stdout).done).toBe(JSON.parse(committedAtPause).done);

    const abort = await runCli(['--state', state, 'abort', runId, '--reason', 'enough for today'], env);
    expect(abort.code, abort.stderr).toBe(0);
    const res = await cli.done;
    expect(res.code, res.stderr).toBe(4);
    expect(res.stdout).toContain('"type":"aborted"');

    const store = await StateStore.open(state);
    try {
      const events = (await store.events(runId)).filter((e) => ['pause', 'abort', 'resume'].includes(e.action));
      expect(events.map((e) => [e.action, e.actor, e.detail.reason])).toEqual([
        ['pause', 'operator@example.com', 'checking the replica'],
        ['abort', 'operator@example.com', 'enough for today'],
      ]);
      const row = (await store.getRun(runId))!;
      expect(row).toMatchObject({ control: 'abort', status: 'aborted' });
      const chunks = await store.getChunks(runId, 'full');
      expect(chunks.filter((c) => c.state === 'leased')).toEqual([]);
      const committed = chunks.filter((c) => c.state === 'committed');
      const ledger = await store.ledger(runId, { limit: 10_000 });
      expect(ledger.length).toBe(committed.reduce((n, c) => n + c.items, 0));
      expect(new Set(ledger.map((l) => l.chunk_seq))).toEqual(new Set(committed.map((c) => c.seq)));
    } finally {
      await store.close();
    }

    // No process holds the store now: resume writes the flag directly; the next run completes.
    const resume = await runCli(['--state', state, 'resume', runId], env);
    expect(resume.stdout).toContain(`resume: ${runId} control=run`);
    const again = await runCli(['--state', state, 'run', plan.path, '--stage', 'full', '--reports', reports], env);
    expect(again.code, again.stderr).toBe(0);
    const sink = await withClient(db.url, async (c) => (await c.query('select count(*)::int as n, count(distinct id)::int as d from sink')).rows[0]);
    expect(sink).toEqual({ n: N, d: N });
    await db.drop();
  });
});
