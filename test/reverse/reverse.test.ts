/**
 * Reversal, through the shipped CLI: a `replay` sql effect applied to 500 rows is reversed for 50
 * chosen items. Those rows are back to their `before` values (rows the backfill created are
 * deleted again, as the plan's reverse statement says), the 450 others untouched; a second
 * `--execute` changes nothing. Once with the state on the target database (compensation and
 * `reversed` mark in one transaction), once with the state in a database of its own.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runStage } from '../../executor/stages/run.js';
import { BIN, runCli } from '../support/cli.js';
import { createTestDatabase, withClient, type TestDatabase } from '../support/db.js';
import { writePlan } from '../support/plans.js';

const N = 500;
/** 46 items whose row existed before the run, and 4 whose row the run created (ids divisible by 25). */
const CHOSEN = [...Array.from({ length: 46 }, (_, i) => String(i * 10 + 3)), '25', '50', '75', '100'];

const HANDLER = `
export default async function handler(row, ctx) {
  await ctx.effects.set_balance({ id: String(row.id), balance: Number(row.id) * 10 + 7 });
  await ctx.effects.notify_owner({ id: String(row.id) });
}
`;

async function seed(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`
      create table items (id bigint primary key, created_at timestamptz not null);
      create table accounts (id bigint primary key, balance bigint not null, note text not null);
      insert into items select g, timestamptz '2026-03-01' + g * interval '1 minute' from generate_series(1, ${N}) g;
      insert into accounts select g, g * 10, 'orig-' || g from generate_series(1, ${N}) g where g % 25 <> 0;`);
  });
}

function plan(dir: string, stateOnTarget: boolean) {
  return writePlan('accounts-rebalance', {
    reprise: 1,
    name: 'accounts-rebalance',
    revision: 1,
    owner: 'ledger',
    author: 'alice@example.com',
    reason: 'Rebalance accounts after the March import.',
    connections: { accounts: { env: 'ACCOUNTS_DATABASE_URL' } },
    selection: {
      connection: 'accounts',
      query: 'select id from items where created_at >= :window_start and created_at < :window_end',
      key: 'id',
      window: { start: '2026-03-01T00:00:00Z', end: '2026-04-01T00:00:00Z' },
      expect: { min: N, max: N },
    },
    processing: { handler: './accounts.handler.js' },
    sideEffects: [
      {
        name: 'set_balance',
        kind: 'sql',
        connection: 'accounts',
        statement: "insert into accounts (id, balance, note) values (:id, :balance, 'backfilled') on conflict (id) do update set balance = excluded.balance, note = excluded.note",
        preview: 'select id, balance, note from accounts where id = :id',
        backfill: 'replay',
        live: 'apply',
        reverse: {
          // Restore the row as it was; delete it where it did not exist (`:before.id` is NULL).
          statement: [
            'with restored as (',
            '  update accounts set balance = :before.balance, note = :before.note',
            '   where id = :id and :before.id::bigint is not null',
            '  returning id)',
            'delete from accounts where id = :id and :before.id::bigint is null',
          ].join('\n'),
        },
      },
      { name: 'notify_owner', kind: 'http', url: { env: 'NOTIFY_URL' }, args: ['id'], backfill: 'suppress', live: 'apply' },
    ],
    rate: { itemsPerSecond: 100_000, concurrency: 4, chunkSize: 100 },
    canary: { size: 10 },
    ...(stateOnTarget ? { checkpoint: { connection: 'accounts' } } : {}),
    approvals: { canary: { min: 1 }, full: { min: 1 }, reverse: { min: 1 } },
  }, { 'accounts.handler.js': HANDLER }, dir);
}

type Row = { id: string; balance: string; note: string };
const rows = (url: string): Promise<Map<string, Row>> =>
  withClient(url, async (c) => new Map((await c.query<Row>('select id::text, balance::text, note from accounts order by id')).rows.map((r) => [r.id, r])));

describe.each([
  ['the state on the target database', true],
  ['the state in a database of its own', false],
] as const)('reverse --effect set_balance --item ×50, %s', (_name, stateOnTarget) => {
  it('lists, refuses without approval, compensates exactly the 50, and a second --execute changes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reprise-reverse-'));
    mkdirSync(join(dir, 'plans'));
    const db = await createTestDatabase('reverse');
    const stateDb: TestDatabase | undefined = stateOnTarget ? undefined : await createTestDatabase('reverse_state');
    await seed(db.url);
    const p = plan(join(dir, 'plans'), stateOnTarget);
    const env = { ...process.env, NO_COLOR: '1', REPRISE_TRUST: undefined, ACCOUNTS_DATABASE_URL: db.url, NOTIFY_URL: 'http://127.0.0.1:9/never-called', REPRISE_ACTOR: 'oncall@example.com' };
    const state = stateDb?.url ?? db.url;
    const cli = (args: string[]) => runCli(['--state', state, ...args], env, dir, BIN);

    const original = await rows(db.url);
    const full = await runStage({ plan: p.path, stage: 'full', stateUrl: state, env, reportsDir: join(dir, 'reports') });
    expect(full.exitCode, JSON.stringify(full.stop)).toBe(0);
    const runId = full.runId;
    const applied = await rows(db.url);
    expect(applied.size).toBe(N);
    expect(applied.get('3')).toEqual({ id: '3', balance: '37', note: 'backfilled' });
    const items = CHOSEN.flatMap((k) => ['--item', k]);

    // 1. The dry-run of the reversal: each compensation with its bound values, nothing applied.
    const listed = await cli(['--json', 'reverse', runId, '--effect', 'set_balance', ...items]);
    expect(listed.code, listed.stderr).toBe(0);
    const lines = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    const comps = lines.filter((l) => l.level === 'compensation');
    expect(comps).toHaveLength(50);
    expect(new Set(comps.map((c) => c.item))).toEqual(new Set(CHOSEN));
    expect(comps.every((c) => c.status === 'would-reverse' && c.compensation.kind === 'sql' && c.compensation.connection === 'accounts')).toBe(true);
    // (bigint columns of the `before` row are kept as JSON numbers or strings, whichever the commit path read)
    const values = (item: string) => Object.fromEntries(comps.find((c) => c.item === item)!.compensation.values.map((v: { name: string; value: unknown }) => [v.name, v.value === null ? null : String(v.value)]));
    expect(values('13')).toEqual({ 'before.balance': '130', 'before.note': 'orig-13', 'before.id': '13', id: '13' });
    expect(values('25')).toEqual({ 'before.balance': null, 'before.note': null, 'before.id': null, id: '25' });
    expect(lines.at(-1)).toMatchObject({ level: 'result', execute: false, selected: 50, reversed: 0, alreadyReversed: 0, itemsWithoutCalls: [] });
    const human = await cli(['reverse', runId, '--effect', 'set_balance', '--item', '13']);
    expect(human.stdout).toMatch(/^would reverse full {3}13 #0: sql on accounts: with restored as \( update accounts set balance = :before\.balance, note = :before\.note where id = :id and :before\.id::bigint is not null returning id\) delete from accounts where id = :id and :before\.id::bigint is null {2}with :before\.balance="?130"?, :before\.note="orig-13", :id="13", :before\.id="?13"?$/m);
    expect(human.stdout.trim().split('\n').at(-1)).toBe('reverse set_balance: 1 compensation would be applied (dry-run; --execute with a reverse approval applies them); 0 already reversed');
    expect(await rows(db.url)).toEqual(applied);

    // 2. --execute needs a reverse approval; an effect without a reverse is refused by name.
    const trust = join(dir, 'pipeline', 'allowed_signers');
    expect((await cli(['keygen', '--out', 'keys/bob.key'])).code).toBe(0);
    mkdirSync(join(dir, 'pipeline'));
    writeFileSync(trust, `bob@example.com ${readFileSync(join(dir, 'keys', 'bob.key.pub'), 'utf8')}`);
    const unapproved = await cli(['reverse', runId, '--effect', 'set_balance', ...items, '--execute', '--trust', trust]);
    expect(unapproved.code).toBe(3);
    expect(unapproved.stderr).toMatch(/^error\[APPROVAL_MISSING\]: no approval for stage reverse of accounts-rebalance r1/m);
    const notDeclared = await cli(['reverse', runId, '--effect', 'notify_owner']);
    expect(notDeclared.code).toBe(2);
    expect(notDeclared.stderr).toMatch(/^error\[REVERSE_NOT_DECLARED\]: effect notify_owner \(http, backfill suppress\) declares no `reverse`: reprise cannot compensate it — the backfill suppresses it/);
    expect(await rows(db.url)).toEqual(applied);

    const approve = await cli(['approve', p.path, '--stage', 'reverse', '--key', 'keys/bob.key', '--approver', 'bob@example.com', '--expires', '1h']);
    expect(approve.code, approve.stderr).toBe(0);

    // 3. Execute, rate-limited to 200/s.
    const exec = await cli(['--json', 'reverse', runId, '--effect', 'set_balance', ...items, '--execute', '--trust', trust, '--rate', '200', '--reports', 'reports']);
    expect(exec.code, exec.stderr).toBe(0);
    const out = exec.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(out.filter((l) => l.level === 'approval').map((l) => [l.approver, l.status])).toEqual([['bob@example.com', 'accepted']]);
    expect(out.filter((l) => l.level === 'compensation' && l.status === 'reversed')).toHaveLength(50);
    const result = out.at(-1)!;
    expect(result).toMatchObject({ level: 'result', execute: true, selected: 50, reversed: 50, failed: 0, alreadyReversed: 0 });

    const reversed = await rows(db.url);
    for (const k of CHOSEN) expect(reversed.get(k), k).toEqual(original.get(k)); // back to before; rows the run created are gone
    expect(CHOSEN.filter((k) => !original.has(k))).toEqual(['25', '50', '75', '100']);
    expect(CHOSEN.every((k) => original.has(k) === reversed.has(k))).toBe(true);
    const others = [...applied.keys()].filter((k) => !CHOSEN.includes(k));
    expect(others).toHaveLength(450);
    for (const k of others) expect(reversed.get(k), k).toEqual(applied.get(k));

    const ledger = await withClient(state, async (c) => (await c.query<{ status: string; n: number; by: string | null }>(
      `select status, count(*)::int as n, max(reversed_by) as by from reprise.ledger where run_id = $1 and effect = 'set_balance' group by status order by status`,
      [runId],
    )).rows);
    expect(ledger).toEqual([{ status: 'applied', n: 450, by: null }, { status: 'reversed', n: 50, by: 'oncall@example.com' }]);
    const reversedItems = await withClient(state, async (c) => (await c.query<{ item_key: string }>(`select item_key from reprise.ledger where run_id = $1 and status = 'reversed'`, [runId])).rows.map((r) => r.item_key));
    expect(new Set(reversedItems)).toEqual(new Set(CHOSEN));
    const report = JSON.parse(readFileSync(join(dir, 'reports', `${runId}.reverse.report.json`), 'utf8'));
    expect(report).toMatchObject({ stage: 'reverse', outcome: 'completed', counts: { selected: 50, succeeded: 50, failed: 0, remaining: 0 }, hash: result.report });
    expect(report.effects.find((e: { name: string }) => e.name === 'set_balance').counts).toMatchObject({ applied: 450, reversed: 50 });
    // 50 compensations at 200/s take about a quarter of a second.
    expect(report.durationMs).toBeGreaterThanOrEqual(200);
    const events = await withClient(state, async (c) => (await c.query<{ action: string; actor: string; detail: Record<string, any> }>(
      `select action, actor, detail from reprise.events where run_id = $1 and action like 'revers%' order by id`,
      [runId],
    )).rows);
    expect(events.map((e) => [e.action, e.actor])).toEqual([['reverse-start', 'oncall@example.com'], ['reversed', 'oncall@example.com']]);
    expect(events[1]!.detail).toMatchObject({ effect: 'set_balance', reversed: 50, failed: 0, report: result.report });

    // 4. Again: nothing left to compensate, nothing changes.
    const again = await cli(['--json', 'reverse', runId, '--effect', 'set_balance', ...items, '--execute', '--trust', trust]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout.trim().split('\n').at(-1)!)).toMatchObject({ execute: true, selected: 0, reversed: 0, alreadyReversed: 50, report: null });
    const all = await cli(['--json', 'reverse', runId, '--effect', 'set_balance']);
    expect(JSON.parse(all.stdout.trim().split('\n').at(-1)!)).toMatchObject({ selected: 450, alreadyReversed: 50 });
    expect(await rows(db.url)).toEqual(reversed);
    const ledgerAgain = await withClient(state, async (c) => (await c.query(`select status, count(*)::int as n from reprise.ledger where run_id = $1 and effect = 'set_balance' group by status order by status`, [runId])).rows);
    expect(ledgerAgain).toEqual([{ status: 'applied', n: 450 }, { status: 'reversed', n: 50 }]);
    const [count] = await withClient(state, async (c) => (await c.query<{ n: number }>(`select count(*)::int as n from reprise.reports where run_id = $1 and stage = 'reverse'`, [runId])).rows);
    expect(count!.n).toBe(1);
    await db.drop();
    await stateDb?.drop();
  });
});
