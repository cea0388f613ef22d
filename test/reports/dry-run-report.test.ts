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
import { createTestDatabase, withClient } from '../support/db.js';
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
    expect(absent).toMatchObject({ effect: 'set_total', before: [], after: [{ id: '1', amount: '11' }], method: 'executed' });
    expect(absent.diff).toContain('+  "amount": "11"');
    const present = r.preview.find((p) => p.itemKey === '2')!;
    expect(present).toMatchObject({ before: [{ id: '2', amount: '20' }], after: [{ id: '2', amount: '22' }], method: 'executed' });

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

  it('shows what the statement really does (rolled back), and an estimate where the target refuses writes', async () => {
    const db = await createTestDatabase('dryrun_preview');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`create table items (id bigint primary key, created_at timestamptz not null);
                   create table accounts (id bigint primary key, balance bigint not null, touched int not null default 0);
                   create function touch() returns trigger language plpgsql as $$ begin new.touched := old.touched + 1; return new; end $$;
                   create trigger accounts_touch before update on accounts for each row execute function touch();
                   insert into items select g, timestamptz '2026-01-01' + g * interval '1 minute' from generate_series(1, 12) g;
                   insert into accounts select g, 100 from generate_series(1, 12) g;`);
    await c.end();
    const ro = new URL(db.url);
    ro.searchParams.set('options', '-c default_transaction_read_only=on');
    const effect = (name: string, connection: string, statement: string) => ({ name, kind: 'sql', connection, statement, preview: 'select id, balance, touched from accounts where id = :id', backfill: 'replay', live: 'none' });
    const plan = writePlan('dry-run-preview', {
      reprise: 1, name: 'dry-run-preview', revision: 1, owner: 'ops', author: 'tester@example.com', reason: 'dry-run preview test',
      connections: { db: { env: 'DRY_DB_URL' }, replica: { env: 'DRY_RO_URL' } },
      selection: { connection: 'db', query: 'select id from items where created_at >= :window_start and created_at < :window_end', key: 'id', window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' }, expect: { min: 12, max: 12 } },
      processing: { handler: './h.ts', timeoutMs: 5000, retries: { max: 0, backoffMs: 10 } },
      sideEffects: [
        // Arguments named unlike the columns: only running the statement tells what it changes.
        effect('credit', 'db', 'update accounts set balance = balance + :credit_cents where id = :id'),
        effect('credit_on_replica', 'replica', 'update accounts set balance = :balance where id = :id'),
        effect('opaque_on_replica', 'replica', 'update accounts set balance = balance + :credit_cents where id = :id'),
      ],
      rate: { itemsPerSecond: 100_000, concurrency: 2, chunkSize: 10, maxConnections: 4 },
      canary: { size: 5, pick: 'first' },
      checkpoint: { connection: 'db' },
    }, {
      'h.ts': `
        import { defineHandler } from 'reprise';
        export default defineHandler(async (item: { id: string }, ctx) => {
          const id = Number(item.id);
          await ctx.effects.credit({ id, credit_cents: 5 });
          await ctx.effects.credit_on_replica({ id, balance: 105 });
          await ctx.effects.opaque_on_replica({ id, credit_cents: 5 });
        });`,
    });
    const out = await runStage({ plan: plan.path, stage: 'dry-run', stateUrl: 'unused://', env: { ...process.env, DRY_DB_URL: db.url, DRY_RO_URL: ro.toString() }, reportsDir: mkdtempSync(join(tmpdir(), 'reprise-reports-')) });
    expect(out.exitCode).toBe(0);
    const r = out.report!;
    const of = (effect: string) => r.preview.find((p) => p.effect === effect && p.itemKey === '3')!;
    // Executed and rolled back: the real new balance, and the trigger's work too.
    expect(of('credit')).toMatchObject({ before: [{ id: '3', balance: '100', touched: 0 }], after: [{ id: '3', balance: '105', touched: 1 }], method: 'executed' });
    expect(of('credit').diff).toContain('+  "balance": "105"');
    // Refused by a read-only target: estimated from the arguments, and said so.
    expect(of('credit_on_replica')).toMatchObject({ before: [{ id: '3', balance: '100', touched: 0 }], after: [{ id: '3', balance: 105, touched: 0 }], method: 'estimated' });
    expect(of('credit_on_replica').note).toMatch(/read-only transaction/);
    expect(of('opaque_on_replica')).toMatchObject({ after: null, diff: '' });
    expect(of('opaque_on_replica').note).toMatch(/no argument names a column/);
    expect(r.preview.filter((p) => p.effect === 'credit')).toHaveLength(10);
    // Nothing was committed.
    await withClient(db.url, async (client) => {
      expect((await client.query('select count(*)::int as n from accounts where balance <> 100 or touched <> 0')).rows[0].n).toBe(0);
    });
    await db.drop();
  });
});
