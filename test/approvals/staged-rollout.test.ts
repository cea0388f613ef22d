/**
 * The staged rollout as a team runs it, through the shipped CLI on PostgreSQL (docs/approvals.md,
 * "Walkthrough"): dry-run -> two reviewers approve canary (a `reprise keygen` key and an OpenSSH
 * key through ssh-keygen) -> run canary (go/no-go table first) -> both approve full on the canary
 * report -> run full (go/no-go as JSON) -> every invoice fixed, approval uses recorded.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshKeygen } from './helpers.js';
import { CHECKS, goNoGoTable, ORDERS, readJson, rollout, type Rollout } from './rollout.js';

describe('staged rollout through the CLI, on PostgreSQL', () => {
  let w: Rollout;
  beforeAll(async () => {
    w = await rollout();
  });
  afterAll(async () => {
    await w?.close();
  });

  it('dry-run -> approve canary -> run canary -> approve full -> run full', async () => {
    const dryRunReport = join(w.reports, `${w.runId}.dry-run.report.json`);
    const canaryReport = join(w.reports, `${w.runId}.canary.report.json`);

    // CI: the dry-run.
    const dry = await w.cli(['dry-run', w.plan, '--reports', w.reports]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(readJson(dryRunReport)).toMatchObject({ stage: 'dry-run', outcome: 'completed', count: { value: ORDERS } });

    // Two reviewers: erin with a key from `reprise keygen`, frank with an OpenSSH key (ssh-keygen).
    expect((await w.cli(['keygen', '--out', 'keys/erin.key', '--comment', 'erin'])).code).toBe(0);
    sshKeygen(join(w.dir, 'keys'), 'frank', 'ed25519');
    const trust = join(w.dir, 'pipeline', 'allowed_signers.reviewers');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(trust, [
      `erin@example.com ${readFileSync(join(w.dir, 'keys/erin.key.pub'), 'utf8').trim()}`,
      `frank@example.com namespaces="reprise,git" ${readFileSync(join(w.dir, 'keys/frank.pub'), 'utf8').trim()}`,
      '',
    ].join('\n'));
    const approve = (stage: string, key: string, who: string, evidence: string) =>
      w.cli(['approve', w.plan, '--stage', stage, '--key', key, '--approver', who, '--evidence', evidence, '--out', 'approvals', '--expires', '2h']);
    for (const [key, who] of [['keys/erin.key', 'erin@example.com'], ['keys/frank', 'frank@example.com']] as const) {
      const a = await approve('canary', key, who, dryRunReport);
      expect(a.code, a.stderr).toBe(0);
    }
    const verify = await w.cli(['verify', w.plan, '--stage', 'canary', '--trust', trust, '--evidence', dryRunReport]);
    expect(verify.code, verify.stderr).toBe(0);

    // The pipeline: the canary. The go/no-go table comes before any processing.
    const canary = await w.cli(['run', w.plan, '--stage', 'canary', '--trust', trust, '--reports', w.reports]);
    expect(canary.code, canary.stderr).toBe(0);
    const table = goNoGoTable(canary.stdout);
    expect([...table.keys()]).toEqual(CHECKS);
    for (const [check, row] of table) expect(row.status, `${check}: ${row.detail}`).toMatch(/^(go|n\/a)$/);
    expect(table.get('approvals')!.detail).toMatch(/^2 valid, 1 required: erin@example\.com, frank@example\.com on dry-run report sha256:[0-9a-f]{12}… \(state store\)$/);
    expect(table.get('count drift')!.detail).toContain(`${ORDERS} items now, ${ORDERS} at the dry-run (+0, +0.00%); allowed ±6 (1.00%)`);
    expect(table.get('fingerprints')!.detail).toMatch(/^events redis [0-9a-f]+, orders postgres \d+\/rollout_\S+, as in the dry-run report/);
    expect(table.get('dedupe store')!.detail).toMatch(/^redis on events, namespace invoices_\S+, answered in \d+ ms$/);
    expect(table.get('live watermark')!.detail).toBe('live path started at 2026-11-11T00:00:00.000Z, at or before the cutoff 2026-11-12T00:00:00.000Z');
    expect(table.get('kill switch')!.detail).toContain(`control flag run: reprise pause|abort ${w.runId} stops it`);
    expect(table.get('protect probes')).toEqual({ status: 'n/a', detail: 'none declared' });
    // The table is the command's output (stdout); the lifecycle lines go to stderr.
    expect(canary.stdout.split('\n')[0]).toBe(`go/no-go: canary of ${w.runId}`);
    expect(canary.stderr).toContain(`canary: ${w.runId} — ${ORDERS} items`);
    const canaryBody = readJson(canaryReport);
    expect(canaryBody).toMatchObject({ stage: 'canary', outcome: 'completed', counts: { processed: 100 }, validations: [{ name: 'canary-totals-consistent', ok: true }] });

    // A canary approval is not a full approval.
    const early = await w.cli(['run', w.plan, '--stage', 'full', '--trust', trust, '--reports', w.reports]);
    expect(early.code).toBe(3);
    expect(early.stderr).toMatch(/^error\[APPROVAL_WRONG_STAGE\]: go\/no-go: approvals: /m);

    // Reviewers read the canary report and sign full (min 2).
    for (const [key, who] of [['keys/erin.key', 'erin@example.com'], ['keys/frank', 'frank@example.com']] as const) {
      const a = await approve('full', key, who, canaryReport);
      expect(a.code, a.stderr).toBe(0);
    }
    const full = await w.cli(['--json', 'run', w.plan, '--stage', 'full', '--trust', trust, '--reports', w.reports]);
    expect(full.code, full.stderr).toBe(0);
    const events = full.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    const rows = events.filter((e) => e.type === 'preflight');
    expect(rows.map((r) => r.check)).toEqual(CHECKS);
    expect(rows.every((r) => r.ok === true)).toBe(true);
    const approvalsRow = rows[0]!;
    expect(approvalsRow).toMatchObject({ run: w.runId, stage: 'full', status: 'go', min: 2, evidence: { stage: 'canary', hash: canaryBody.hash, source: 'state store' } });
    // The folder still holds the canary approvals: listed, refused for full.
    expect(approvalsRow.approvals.map((a: { approver: string; status: string; code?: string }) => [a.approver, a.status, a.code ?? null])).toEqual([
      ['erin@example.com', 'accepted', null],
      ['frank@example.com', 'accepted', null],
      ['erin@example.com', 'refused', 'APPROVAL_WRONG_STAGE'],
      ['frank@example.com', 'refused', 'APPROVAL_WRONG_STAGE'],
    ]);
    expect(Object.keys(approvalsRow).slice(0, 4)).toEqual(['type', 'at', 'run', 'stage']);
    // Printed before any processing: every preflight row precedes the stage's start.
    expect(events.findLastIndex((e) => e.type === 'preflight')).toBeLessThan(events.findIndex((e) => e.type === 'start'));
    expect(events.at(-1)).toMatchObject({ level: 'result', stage: 'full', outcome: 'completed', exitCode: 0 });

    // What it did: every invoice in the window recomputed, four approval uses for this run.
    const [stale] = await w.sql<{ n: number }>(
      `select count(*)::int as n from invoices i join orders o on o.id = i.order_id
        where o.status = 'invoiced' and o.created_at >= '2026-10-01' and o.created_at < '2026-11-12' and i.tax_cents = o.subtotal_cents / 10`,
    );
    expect(stale!.n).toBe(0);
    const uses = await w.sql<{ stage: string; approver: string; run_id: string }>('select stage, approver, run_id from reprise.approval_uses order by stage, approver');
    expect(uses).toEqual([
      { stage: 'canary', approver: 'erin@example.com', run_id: w.runId },
      { stage: 'canary', approver: 'frank@example.com', run_id: w.runId },
      { stage: 'full', approver: 'erin@example.com', run_id: w.runId },
      { stage: 'full', approver: 'frank@example.com', run_id: w.runId },
    ]);
    const [run] = await w.sql<{ stage: string; status: string; items_done: string }>('select stage, status, items_done from reprise.runs where id = $1', [w.runId]);
    expect(run).toEqual({ stage: 'full', status: 'completed', items_done: String(ORDERS) });
    const audit = await w.sql<{ action: string; detail: Record<string, any> }>(`select action, detail from reprise.events where run_id = $1 and action = 'preflight' order by id`, [w.runId]);
    expect(audit.map((a) => [a.detail.stage, a.detail.approvals.length, a.detail.evidence.stage])).toEqual([['canary', 2, 'dry-run'], ['full', 2, 'canary']]);
    await w.db.drop();
  });
});
