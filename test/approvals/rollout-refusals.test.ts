/**
 * The refusals that need the executor, each through the shipped `reprise run` with real
 * signatures, each in a database of its own: the whole go/no-go table is printed, the first no-go
 * row is the error (exit 3), and nothing is processed. (The verifier's other refusals — expired,
 * untrusted, wrong namespace, tampered… — are in verify.test.ts and cli.test.ts.)
 */
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compilePlanFile } from '../../compiler/compile.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { seedOrders } from '../support/orders.js';
import { copyPlan } from '../support/plans.js';
import type { CliResult } from '../support/cli.js';
import { CHECKS, goNoGoTable, ORDERS, readJson, rollout, type Rollout } from './rollout.js';

let open: Rollout[] = [];
let extraDbs: TestDatabase[] = [];
async function workspace(...args: Parameters<typeof rollout>): Promise<Rollout> {
  const w = await rollout(...args);
  open.push(w);
  return w;
}
async function staging(): Promise<TestDatabase> {
  const db = await createTestDatabase('staging');
  await seedOrders(db.url, ORDERS);
  extraDbs.push(db);
  return db;
}
afterEach(async () => {
  for (const w of open) await w.close();
  open = [];
  extraDbs = [];
});

/** Exit 3, the whole table printed, the error naming the first no-go row. */
function expectRefused(res: CliResult, code: string, check: string): Map<string, { status: string; detail: string }> {
  expect(res.code, res.stderr).toBe(3);
  const table = goNoGoTable(res.stdout);
  expect([...table.keys()]).toEqual(CHECKS);
  expect(table.get(check)!.status).toBe('no-go');
  expect(table.get(check)!.detail.startsWith(`${code}: `)).toBe(true);
  expect(res.stderr).toMatch(new RegExp(`^error\\[${code}\\]: go/no-go: ${check}: `, 'm'));
  return table;
}

async function nothingProcessed(w: Rollout, runId = w.runId): Promise<void> {
  const [chunks] = await w.sql<{ n: number }>('select count(*)::int as n from reprise.chunks where run_id = $1', [runId]);
  const [uses] = await w.sql<{ n: number }>('select count(*)::int as n from reprise.approval_uses');
  expect({ chunks: chunks!.n, approvalUses: uses!.n }).toEqual({ chunks: 0, approvalUses: 0 });
}

describe('run refuses (exit 3) after printing the go/no-go table', () => {
  it('no approval at all (APPROVAL_MISSING); an approval already used by another run (APPROVAL_ALREADY_USED)', async () => {
    const w = await workspace();
    const dry = await w.dryRun();
    expectRefused(await w.run('canary'), 'APPROVAL_MISSING', 'approvals');
    const file = await w.approve('canary', 'bob', { dryRunReport: dry.hash });
    const id = readJson(file).id as string;
    // Approval uses are kept per approval id, whichever run used it.
    await w.sql(`insert into reprise.approval_uses (approval_id, run_id, stage, approver) values ($1, 'orders-tax-recompute.r1.0badc0de', 'canary', 'bob@example.com')`, [id]);
    const res = await w.run('canary');
    const table = expectRefused(res, 'APPROVAL_ALREADY_USED', 'approvals');
    expect(table.get('approvals')!.detail).toContain('already used by run orders-tax-recompute.r1.0badc0de');
    const [chunks] = await w.sql<{ n: number }>('select count(*)::int as n from reprise.chunks where run_id = $1', [w.runId]);
    expect(chunks!.n).toBe(0);
    await w.db.drop();
  });

  it('evidence that is not this run\'s: a staging dry-run report (APPROVAL_WRONG_EVIDENCE), a renamed report of another run (EVIDENCE_NOT_THIS_RUN)', async () => {
    const w = await workspace();
    const stg = await staging();
    const stagingReport = await w.dryRun({ ORDERS_DATABASE_URL: stg.url });
    const own = await w.dryRun();
    expect(stagingReport.hash).not.toBe(own.hash);
    await w.approve('canary', 'bob', { dryRunReport: stagingReport.hash });
    const res = await w.run('canary');
    const table = expectRefused(res, 'APPROVAL_WRONG_EVIDENCE', 'approvals');
    expect(table.get('approvals')!.detail).toContain(`cites dry-run report ${stagingReport.hash}, but this run's dry-run report is ${own.hash}`);
    await nothingProcessed(w);

    // A state store without a dry-run report falls back to reports/<run>.dry-run.report.json,
    // which must be this run's: here it is the dry-run of revision 2, renamed.
    const fresh = await workspace();
    const r2 = copyPlan(fresh.plan, { revision: 2 }, undefined, join(fresh.dir, 'plans-r2'));
    const r2run = (await compilePlanFile(r2.path)).runId;
    const { runStage } = await import('../../executor/stages/run.js');
    const other = (await runStage({ plan: r2.path, stage: 'dry-run', stateUrl: 'unused://', env: { ...fresh.env, ORDERS_DATABASE_URL: stg.url }, reportsDir: join(fresh.dir, 'r2-reports') })).report!;
    mkdirSync(fresh.reports, { recursive: true });
    copyFileSync(join(fresh.dir, 'r2-reports', `${r2run}.dry-run.report.json`), join(fresh.reports, `${fresh.runId}.dry-run.report.json`));
    await fresh.approve('canary', 'bob', { dryRunReport: other.hash });
    const res2 = await fresh.run('canary');
    const t2 = expectRefused(res2, 'EVIDENCE_NOT_THIS_RUN', 'approvals');
    expect(t2.get('approvals')!.detail).toContain(`is a dry-run report of run ${r2run}`);
    await nothingProcessed(fresh);
    await w.db.drop();
    await fresh.db.drop();
    await stg.drop();
  });

  it('a canary (not full) approval presented for full (APPROVAL_WRONG_STAGE)', async () => {
    const w = await workspace();
    const dry = await w.dryRun();
    await w.approve('canary', 'bob', { dryRunReport: dry.hash });
    expect((await w.run('canary')).code).toBe(0);
    // Two canary approvals with the canary report as their evidence are still canary approvals.
    const canary = readJson(join(w.reports, `${w.runId}.canary.report.json`));
    await w.approve('canary', 'carol', { canaryReport: canary.hash, dryRunReport: dry.hash });
    const res = await w.run('full');
    const table = expectRefused(res, 'APPROVAL_WRONG_STAGE', 'approvals');
    expect(table.get('approvals')!.detail).toContain('approves stage canary, not full');
    const [run] = await w.sql<{ stage: string }>('select stage from reprise.runs where id = $1', [w.runId]);
    expect(run!.stage).toBe('canary');
    await w.db.drop();
  });

  it('the handler edited after approval (APPROVAL_WRONG_MANIFEST)', async () => {
    const w = await workspace();
    const dry = await w.dryRun();
    await w.approve('canary', 'bob', { dryRunReport: dry.hash });
    appendFileSync(join(w.dir, 'plans', 'orders-tax-recompute.handler.ts'), '\n// "harmless" tweak after review\n');
    const edited = await compilePlanFile(w.plan);
    expect(edited.hash).not.toBe(w.hash);
    const res = await w.run('canary');
    const table = expectRefused(res, 'APPROVAL_WRONG_MANIFEST', 'approvals');
    expect(table.get('approvals')!.detail).toContain(`approves manifest ${w.hash}, but this plan compiles to ${edited.hash}`);
    expect(res.stderr).toContain('the plan, its handler or an effect module changed after approval');
    await nothingProcessed(w, edited.runId);
    await w.db.drop();
  });

  it('a manifest whose bytes are not canonical (MANIFEST_NOT_CANONICAL): duplicate keys, reordered keys', async () => {
    const w = await workspace();
    const compiled = await w.cli(['compile', w.plan, '--out', 'build']);
    expect(compiled.code, compiled.stderr).toBe(0);
    const path = join(w.dir, 'build', 'orders-tax-recompute.r1.manifest.json');
    const bytes = readFileSync(path, 'utf8');
    const duplicate = join(w.dir, 'build', 'duplicate.manifest.json');
    writeFileSync(duplicate, `{"compiler":{"name":"reprise","version":"0.0.0"},${bytes.slice(1)}`);
    const reordered = join(w.dir, 'build', 'reordered.manifest.json');
    const parsed = JSON.parse(bytes) as Record<string, unknown>;
    writeFileSync(reordered, JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse())));
    expect(JSON.parse(readFileSync(reordered, 'utf8'))).toEqual(parsed);
    for (const file of [duplicate, reordered]) {
      const res = await w.run('canary', ['--manifest', file]);
      expect(res.code).toBe(3);
      expect(res.stderr).toMatch(/^error\[MANIFEST_NOT_CANONICAL\]: .* is not in canonical form/m);
    }
    // The manifest as compiled passes that check and goes on to the go/no-go (no dry-run yet).
    expectRefused(await w.run('canary', ['--manifest', path]), 'EVIDENCE_MISSING', 'approvals');
    await w.db.drop();
  });

  it('the count drifted from the dry-run beyond 1% (COUNT_DRIFT); within it, the canary runs', async () => {
    const w = await workspace();
    const dry = await w.dryRun();
    await w.approve('canary', 'bob', { dryRunReport: dry.hash });
    const add = async (from: number, n: number): Promise<void> => {
      await w.sql(
        `insert into orders (id, customer_id, subtotal_cents, region, status, created_at)
         select g, 7, 5000, 'eu-de', 'invoiced', timestamptz '2026-10-15' from generate_series($1::int, $2::int) g`,
        [from, from + n - 1],
      );
      await w.sql(`insert into invoices (order_id, total_cents, tax_cents) select g, 5500, 500 from generate_series($1::int, $2::int) g`, [from, from + n - 1]);
    };
    await add(100_000, 20);
    const res = await w.run('canary');
    const table = expectRefused(res, 'COUNT_DRIFT', 'count drift');
    expect(table.get('count drift')!.detail).toBe('COUNT_DRIFT: 620 items now, 600 at the dry-run (+20, +3.33%); allowed ±6 (1.00%)');
    expect(table.get('approvals')!.status).toBe('go');
    expect(table.get('count guard')!.status).toBe('go');
    await nothingProcessed(w);
    await w.sql('delete from invoices where order_id >= 100006');
    await w.sql('delete from orders where id >= 100006');
    const ok = await w.run('canary');
    expect(ok.code, ok.stderr).toBe(0);
    expect(goNoGoTable(ok.stdout).get('count drift')).toEqual({ status: 'go', detail: '606 items now, 600 at the dry-run (+6, +1.00%); allowed ±6 (1.00%)' });
    await w.db.drop();
  });

  it('targets other than the dry-run\'s (FINGERPRINT_MISMATCH): dry-run on staging, canary on production', async () => {
    const w = await workspace();
    const stg = await staging();
    // CI dry-ran against staging, with its own state there: production's store has no dry-run report.
    const report = await w.dryRun({ ORDERS_DATABASE_URL: stg.url });
    await w.approve('canary', 'bob', { dryRunReport: report.hash });
    const res = await w.run('canary');
    const table = expectRefused(res, 'FINGERPRINT_MISMATCH', 'fingerprints');
    // The approval itself holds: it cites the report file, used because this store has none.
    expect(table.get('approvals')).toMatchObject({ status: 'go', detail: expect.stringContaining(`(file ${join(w.reports, `${w.runId}.dry-run.report.json`)}; the state store has none)`) });
    const detail = table.get('fingerprints')!.detail;
    expect(detail).toMatch(new RegExp(`^FINGERPRINT_MISMATCH: connection \`orders\`: the dry-run report recorded postgres \\d+/${stg.name}, this environment is postgres \\d+/${w.db.name}$`));
    expect(detail).not.toContain('`events`');
    expect(res.stderr).toContain('an approval earned on one environment cannot run against another');
    await nothingProcessed(w);
    await w.db.drop();
    await stg.drop();
  });

  it('a failing go/no-go row: the live path started after the cutoff, and an abort flag left from before', async () => {
    const w = await workspace();
    const dry = await w.dryRun();
    await w.approve('canary', 'bob', { dryRunReport: dry.hash });
    await w.sql(`update consumer_offsets set started_at = '2026-11-13T06:00:00Z' where consumer = 'invoicer'`);
    const abort = await w.cli(['abort', w.runId, '--reason', 'invoices look off', '--state', w.db.url], { REPRISE_ACTOR: 'oncall@example.com' });
    expect(abort.code, abort.stderr).toBe(0);
    const res = await w.run('canary');
    const table = expectRefused(res, 'LIVE_WATERMARK_AFTER_CUTOFF', 'live watermark');
    expect(table.get('live watermark')!.detail).toBe('LIVE_WATERMARK_AFTER_CUTOFF: the live path started at 2026-11-13T06:00:00.000Z, after the cutoff 2026-11-12T00:00:00.000Z: items between the two belong to neither the backfill window nor the live path');
    expect(table.get('kill switch')!.status).toBe('no-go');
    expect(table.get('kill switch')!.detail).toMatch(/^CONTROL_FLAG_SET: the run's control flag is abort \(set by oncall@example\.com at \S+: invoices look off\), left from before/);
    for (const check of ['approvals', 'count guard', 'count drift', 'fingerprints', 'dedupe store']) expect(table.get(check)!.status, check).toBe('go');
    expect(res.stderr).toMatch(/\(also no-go: kill switch CONTROL_FLAG_SET\) — move the cutoff/);
    await nothingProcessed(w);
    const [refused] = await w.sql<{ detail: Record<string, any> }>(`select detail from reprise.events where run_id = $1 and action = 'refused' order by id desc limit 1`, [w.runId]);
    expect(refused!.detail).toMatchObject({ stage: 'canary', code: 'LIVE_WATERMARK_AFTER_CUTOFF' });

    // Fixed: the live consumer started in time, the flag is cleared; now it is a go.
    await w.sql(`update consumer_offsets set started_at = '2026-11-11T00:00:00Z' where consumer = 'invoicer'`);
    expect((await w.cli(['resume', w.runId, '--state', w.db.url])).code).toBe(0);
    const ok = await w.run('canary');
    expect(ok.code, ok.stderr).toBe(0);
    await w.db.drop();
  });
});

describe('a canary whose validation fails', () => {
  it('exits 5, its report names the failed validation, and full cannot be approved on it', async () => {
    const w = await workspace({
      patch: { canary: { validate: [{ name: 'no-invoice-above-500-eur', connection: 'orders', query: 'select count(*) = 0 as ok from invoices where total_cents > 50000' }] } },
    });
    const dry = await w.dryRun();
    await w.approve('canary', 'bob', { dryRunReport: dry.hash });
    const res = await w.run('canary');
    expect(res.code, res.stderr).toBe(5);
    const path = join(w.reports, `${w.runId}.canary.report.json`);
    const report = readJson(path);
    expect(report).toMatchObject({ stage: 'canary', outcome: 'validation-failed', validations: [{ name: 'no-invoice-above-500-eur', ok: false, detail: 'returned ok = false' }] });
    expect(readFileSync(join(w.reports, `${w.runId}.canary.report.md`), 'utf8')).toContain('no-invoice-above-500-eur');

    // `reprise approve` will not sign full on it…
    const keygen = await w.cli(['keygen', '--out', 'keys/erin.key']);
    expect(keygen.code).toBe(0);
    const approve = await w.cli(['approve', w.plan, '--stage', 'full', '--key', 'keys/erin.key', '--approver', 'erin@example.com', '--evidence', path]);
    expect(approve.code).toBe(2);
    expect(approve.stderr).toMatch(/^error\[EVIDENCE_NOT_COMPLETED\]: .*canary\.report\.json has outcome validation-failed \(validation failed: no-invoice-above-500-eur \(returned ok = false\)\); stage full is approved only on a canary that completed/);
    // …and approvals signed anyway (by hand) citing it do not start full.
    await w.approve('full', 'bob', { canaryReport: report.hash });
    await w.approve('full', 'carol', { canaryReport: report.hash });
    const full = await w.run('full');
    const table = expectRefused(full, 'CANARY_VALIDATION_FAILED', 'approvals');
    expect(table.get('approvals')!.detail).toContain('failed validation: validation failed: no-invoice-above-500-eur');
    const [run] = await w.sql<{ stage: string }>('select stage from reprise.runs where id = $1', [w.runId]);
    expect(run!.stage).toBe('canary');
    const [fullChunks] = await w.sql<{ n: number }>(`select count(*)::int as n from reprise.chunks where run_id = $1 and stage = 'full' and state = 'committed'`, [w.runId]);
    expect(fullChunks!.n).toBe(0);
    await w.db.drop();
  });
});
