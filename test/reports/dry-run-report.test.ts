/**
 * The dry-run report's previews and error samples, on a real database: a sql effect whose
 * preview query finds no row (the effect would insert it) shows `before: []`, not "could not be
 * read"; failures of any kind (an Error, a string, null) are sampled, first and most recent.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runStage } from '../../executor/stages/run.js';
import { createTestDatabase } from '../support/db.js';
import { writePlan } from '../support/plans.js';

const N = 60;

describe('dry-run report', () => {
  it('previews an absent row as [] and samples every kind of failure', async () => {
    const db = await createTestDatabase('dryrun');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`create table items (id bigint primary key, created_at timestamptz not null);
                   create table totals (id bigint primary key, amount bigint not null);
                   insert into items select g, timestamptz '2026-01-01' + g * interval '1 minute' from generate_series(1, ${N}) g;
                   insert into totals select g, g * 10 from generate_series(1, ${N}) g where g % 2 = 0;`);
    await c.end();
    const plan = writePlan('dry-run-test', {
      reprise: 1, name: 'dry-run-test', revision: 1, owner: 'ops', author: 'tester@example.com', reason: 'dry-run report test',
      connections: { db: { env: 'DRY_DB_URL' } },
      selection: { connection: 'db', query: 'select id from items where created_at >= :window_start and created_at < :window_end', key: 'id', window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' }, expect: { min: N, max: N } },
      processing: { handler: './h.ts', timeoutMs: 5000, retries: { max: 0, backoffMs: 10 } },
      sideEffects: [{ name: 'set_total', kind: 'sql', connection: 'db', statement: 'insert into totals (id, amount) values (:id, :amount) on conflict (id) do update set amount = excluded.amount', preview: 'select id, amount from totals where id = :id', backfill: 'replay', live: 'none' }],
      rate: { itemsPerSecond: 100_000, concurrency: 1, chunkSize: 10, maxConnections: 2 },
      canary: { size: 5, pick: 'first' },
      checkpoint: { connection: 'db' },
    }, {
      'h.ts': `
        import { defineHandler } from 'reprise';
        export default defineHandler(async (item: { id: string }, ctx) => {
          const id = Number(item.id);
          if (id > 30 && id % 5 === 0) throw null;
          if (id > 30 && id % 5 === 1) throw 'a string';
          if (id > 30 && id % 5 === 2) throw new Error('item ' + id + ' broke');
          await ctx.effects.set_total({ id, amount: id * 11 });
        });`,
    });
    const out = await runStage({ plan: plan.path, stage: 'dry-run', stateUrl: 'unused://', env: { ...process.env, DRY_DB_URL: db.url }, reportsDir: mkdtempSync(join(tmpdir(), 'reprise-reports-')) });
    expect(out.exitCode).toBe(0);
    const r = out.report!;
    const absent = r.preview.find((p) => p.itemKey === '1')!;
    expect(absent).toMatchObject({ effect: 'set_total', before: [], after: [{ id: 1, amount: 11 }] });
    expect(absent.diff).toContain('+  "amount": 11');
    const present = r.preview.find((p) => p.itemKey === '2')!;
    expect(present).toMatchObject({ before: [{ id: '2', amount: '20' }], after: [{ id: 2, amount: 22 }] });

    // Items 31..60: 6 throw null, 6 a string, 6 an Error.
    expect(r.errors.total).toBe(18);
    expect(r.counts.failed).toBe(18);
    expect(r.errors.samples).toHaveLength(18);
    expect(r.errors.samples[0]).toMatchObject({ itemKey: '31', attempt: 1, message: 'a string' });
    expect(r.errors.samples[1]).toMatchObject({ itemKey: '32', message: 'item 32 broke' });
    expect(r.errors.samples[2]).toMatchObject({ itemKey: '35', message: 'null' });
    expect(r.throttle).toEqual({ throttledMs: 0, episodes: [] });
    await db.drop();
  });
});
