/**
 * Reversal of a module effect needs the plan's folder (`--plan`, compiling to the run's manifest),
 * and reversal never compensates on another target than the one the run wrote to.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildStatement, signStatement, writeApprovalFile } from '../../executor/approvals/statement.js';
import { runStage } from '../../executor/stages/run.js';
import { BIN, runCli } from '../support/cli.js';
import { createTestDatabase, withClient } from '../support/db.js';
import { copyPlan, writePlan } from '../support/plans.js';
import { newKey } from '../approvals/helpers.js';

const SINK = `
import { appendFileSync } from 'node:fs';
export async function publish(args) { appendFileSync(process.env.SINK_FILE, JSON.stringify({ op: 'publish', ...args }) + '\\n'); }
export async function retract(args) { appendFileSync(process.env.SINK_FILE, JSON.stringify({ op: 'retract', ...args }) + '\\n'); }
`;
const HANDLER = `
export default async function handler(row, ctx) {
  await ctx.effects.publish({ id: String(row.id) });
  await ctx.effects.set_flag({ id: String(row.id) });
}
`;

describe('reverse: module effects and targets', () => {
  it('a module compensation needs --plan compiling to the run\'s manifest; another target is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reprise-reverse-mod-'));
    mkdirSync(join(dir, 'plans'));
    const db = await createTestDatabase('revmod');
    const other = await createTestDatabase('revmod_other');
    const stateDb = await createTestDatabase('revmod_state');
    for (const url of [db.url, other.url]) {
      await withClient(url, (c) => c.query(`create table items (id bigint primary key, flagged boolean not null default false); insert into items (id) select generate_series(1, 20)`));
    }
    const p = writePlan('flag-items', {
      reprise: 1,
      name: 'flag-items',
      revision: 1,
      owner: 'ops',
      author: 'alice@example.com',
      reason: 'Flag the items and tell the subscribers.',
      connections: { db: { env: 'ITEMS_DATABASE_URL' } },
      selection: { connection: 'db', query: 'select id from items where :window_start::timestamptz is not null and :window_end::timestamptz is not null', key: 'id', window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' }, expect: { min: 20, max: 20 } },
      processing: { handler: './flag.handler.js' },
      sideEffects: [
        { name: 'publish', kind: 'module', module: './sink.js', export: 'publish', args: ['id'], backfill: 'replay', live: 'none', reverse: { export: 'retract' } },
        { name: 'set_flag', kind: 'sql', connection: 'db', statement: 'update items set flagged = true where id = :id', backfill: 'replay', live: 'none', reverse: { statement: 'update items set flagged = false where id = :id' } },
      ],
      rate: { itemsPerSecond: 10_000, chunkSize: 10 },
      canary: { size: 2 },
    }, { 'flag.handler.js': HANDLER, 'sink.js': SINK }, join(dir, 'plans'));
    const sink = join(dir, 'sink.jsonl');
    const env = { ...process.env, NO_COLOR: '1', REPRISE_TRUST: undefined, ITEMS_DATABASE_URL: db.url, SINK_FILE: sink };
    const cli = (args: string[], e: NodeJS.ProcessEnv = env) => runCli(['--state', stateDb.url, ...args], e, dir, BIN);
    process.env.SINK_FILE = sink; // the module reads it; in this process for the run, in the CLI's for the reversal
    const full = await runStage({ plan: p.path, stage: 'full', stateUrl: stateDb.url, env, reportsDir: join(dir, 'reports') });
    expect(full.exitCode, JSON.stringify({ stop: full.stop, errors: full.report?.errors })).toBe(0);
    const runId = full.runId;
    expect(readFileSync(sink, 'utf8').trim().split('\n')).toHaveLength(20);

    // A reverse approval, signed in the test, trusted by the pipeline's file.
    const bob = newKey('bob');
    const trust = join(dir, 'allowed_signers');
    writeFileSync(trust, `bob@example.com ${bob.publicKeyLine}\n`);
    const now = Date.now();
    writeApprovalFile(join(dir, 'approvals'), await signStatement(buildStatement({ manifest: full.report!.manifest, plan: 'flag-items', revision: 1, stage: 'reverse', evidence: { fullReport: full.report!.hash }, approver: 'bob@example.com', issuedAt: new Date(now - 60_000), expiresAt: new Date(now + 3_600_000) }), bob));
    const items = ['--item', '4', '--item', '5', '--item', '6'];

    // Listing needs no plan: the module call is described from the manifest.
    const listed = await cli(['reverse', runId, '--effect', 'publish', ...items]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('would reverse full   6 #0: ./sink.js#retract({"id":"6"})');
    // Executing it does.
    const noPlan = await cli(['reverse', runId, '--effect', 'publish', ...items, '--execute', '--trust', trust]);
    expect(noPlan.code).toBe(2);
    expect(noPlan.stderr).toMatch(/^error\[MODULE_NEEDS_PLAN\]: effect publish is a module effect: its compensation retract lives in \.\/sink\.js, beside the plan — pass --plan/m);
    const r2 = copyPlan(p.path, { revision: 2 }, undefined, join(dir, 'plans-r2'));
    const wrongPlan = await cli(['reverse', runId, '--effect', 'publish', ...items, '--execute', '--trust', trust, '--plan', r2.path]);
    expect(wrongPlan.code).toBe(3);
    expect(wrongPlan.stderr).toMatch(/^error\[REVERSE_PLAN_MISMATCH\]: .*flag-items\.yaml compiles to sha256:[0-9a-f]{64}, but run flag-items\.r1\.[0-9a-f]{8} ran sha256:/m);
    const ok = await cli(['reverse', runId, '--effect', 'publish', ...items, '--execute', '--trust', trust, '--plan', p.path]);
    expect(ok.code, ok.stderr).toBe(0);
    const retracts = readFileSync(sink, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.op === 'retract');
    expect(retracts.map((r) => r.id).sort()).toEqual(['4', '5', '6']);

    // The sql effect, with the connection pointed at another database: refused, nothing marked.
    const elsewhere = await cli(['reverse', runId, '--effect', 'set_flag', ...items, '--execute', '--trust', trust], { ...env, ITEMS_DATABASE_URL: other.url });
    expect(elsewhere.code).toBe(3);
    expect(elsewhere.stderr).toMatch(new RegExp(`^error\\[FINGERPRINT_MISMATCH\\]: connection \`db\` is .*"database":"${other.name}".* but the run's full report recorded .*"database":"${db.name}"`, 'm'));
    const statuses = await withClient(stateDb.url, async (c) => (await c.query(`select effect, status, count(*)::int as n from reprise.ledger where run_id = $1 group by 1, 2 order by 1, 2`, [runId])).rows);
    expect(statuses).toEqual([
      { effect: 'publish', status: 'applied', n: 17 },
      { effect: 'publish', status: 'reversed', n: 3 },
      { effect: 'set_flag', status: 'applied', n: 20 },
    ]);
    const [flagged] = await withClient(other.url, async (c) => (await c.query(`select count(*)::int as n from items where flagged`)).rows);
    expect(flagged.n).toBe(0);
    expect(existsSync(join(dir, 'reports', `${runId}.reverse.report.json`))).toBe(true);
    for (const d of [db, other, stateDb]) await d.drop();
  });
});
