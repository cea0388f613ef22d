/**
 * A lease that runs out unrenewed aborts the work under it at once. Another session locks the
 * chunk's row, so the worker's heartbeats wait and renew nothing; the handler is inside a call
 * that only ends when its signal aborts (an effect stuck in its own retries, say). The signal
 * must abort with "lease expired" near the lease's end, before a successor could take the chunk
 * over — not later, when the handler next calls an effect. The chunk is then given back and
 * processed again once the lock goes, and the run completes.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runStage } from '../../executor/stages/run.js';
import { handlerPlan, seedCrashDb } from '../support/crash.js';
import { createTestDatabase } from '../support/db.js';

describe('lease expiry', () => {
  it('aborts an item stuck in a call when the lease runs out unrenewed; the chunk is processed again', async () => {
    const n = 4;
    const leaseTtlMs = 1_500;
    const db = await createTestDatabase('lease_expiry');
    await seedCrashDb(db.url, n);
    const dir = mkdtempSync(join(tmpdir(), 'reprise-expiry-'));
    const log = join(dir, 'log');
    const plan = handlerPlan({
      name: 'lease-expiry', n, env: 'EXPIRY_DB_URL', timeoutMs: 60_000, concurrency: 1, chunkSize: n,
      handler: [
        "import { appendFileSync, existsSync, writeFileSync } from 'node:fs';",
        "import { defineHandler } from 'reprise';",
        `const log = ${JSON.stringify(log)};`,
        `const marker = ${JSON.stringify(join(dir, 'stuck'))};`,
        "export default defineHandler<{ id: string }, 'write'>(async (row, ctx) => {",
        "  if (row.id === '1' && !existsSync(marker)) {",
        '    // The first attempt at item 1 waits for its signal, as a call retrying a connection would.',
        "    writeFileSync(marker, String(Date.now()));",
        '    const signal = ctx.signal;',
        "    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));",
        "    appendFileSync(log, `${Date.now()} ${String(signal.reason?.message ?? signal.reason)}\\n`);",
        '    throw signal.reason;',
        '  }',
        '  await ctx.effects.write({ id: row.id });',
        '});',
        '',
      ].join('\n'),
    });

    // Once the chunk is leased, lock its row from another session: heartbeats now wait.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    let lockedAt = 0;
    const lockWhenLeased = (async () => {
      for (;;) {
        const { rows } = await locker.query(`select count(*)::int as n from reprise.chunks where lease_owner is not null`).catch(() => ({ rows: [{ n: 0 }] }));
        if (rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await locker.query('begin');
      await locker.query('select * from reprise.chunks where lease_owner is not null for update');
      lockedAt = Date.now();
      // Hold the lock well past the lease's end, then let go.
      await new Promise((r) => setTimeout(r, leaseTtlMs * 2));
      await locker.query('rollback');
    })();

    const out = await runStage({
      plan: plan.path, stage: 'full', stateUrl: 'unused://', leaseTtlMs,
      env: { ...process.env, EXPIRY_DB_URL: db.url },
      reportsDir: mkdtempSync(join(tmpdir(), 'reprise-reports-')),
    });
    await lockWhenLeased;
    const totals = (await locker.query('select count(*)::int as n from totals')).rows[0].n as number;
    await locker.end();

    const stuckAt = Number(readFileSync(join(dir, 'stuck'), 'utf8'));
    const line = readFileSync(log, 'utf8').trim().split('\n')[0] ?? '';
    const [abortedAt, ...why] = line.split(' ');
    expect(why.join(' ')).toBe('lease expired');
    // Aborted while the heartbeats still waited on the lock, by the lease's end: without the
    // watcher nothing aborts the call until the item's 60 s timeout ("timed out after …").
    expect(lockedAt).toBeGreaterThan(0);
    expect(Number(abortedAt)).toBeGreaterThan(stuckAt);
    expect(Number(abortedAt)).toBeLessThan(lockedAt + leaseTtlMs * 2);
    expect(out.report!.counts.processed).toBe(n);
    expect(out.report!.counts.failed).toBe(0);
    expect(totals).toBe(n);
    await db.drop();
  });
});
