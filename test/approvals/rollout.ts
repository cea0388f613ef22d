/**
 * A staged-rollout workspace on real servers: a database of its own seeded with the orders
 * example, a copy of the orders plan with test-sized rate, count guard and chunks (state on the
 * orders database, as the example keeps it), reviewer keys made in the test, a trust file outside
 * the plan's folder, and the shipped CLI (bin/reprise.js) run as a subprocess in the workspace.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { compilePlanFile } from '../../compiler/compile.js';
import { buildStatement, signStatement, writeApprovalFile, type ApprovalEvidence, type ApprovalStage } from '../../executor/approvals/statement.js';
import { runStage } from '../../executor/stages/run.js';
import type { Report } from '../../schema/report.types.js';
import { BIN, runCli, type CliResult } from '../support/cli.js';
import { createTestDatabase, uniqueName, withClient, type TestDatabase } from '../support/db.js';
import { startHttpServer, type TestHttpServer } from '../support/http.js';
import { seedOrders } from '../support/orders.js';
import { copyPlan, examplesDir } from '../support/plans.js';
import { newKey, type TestKey } from './helpers.js';

export const ORDERS = 600;

export interface Rollout {
  dir: string;
  db: TestDatabase;
  plan: string;
  reports: string;
  approvals: string;
  trust: string;
  env: NodeJS.ProcessEnv;
  runId: string;
  hash: string;
  /** Native reviewer keys listed in the trust file (the plan's author is alice@example.com). */
  keys: Record<'bob' | 'carol' | 'dave', TestKey>;
  /** The shipped CLI in the workspace, with the workspace's environment (plus `env`). */
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** `run --stage S` with this workspace's approvals, trust and reports. */
  run(stage: 'canary' | 'full', extra?: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** The dry-run, in process (the tests of the refusals are about `run`). */
  dryRun(env?: NodeJS.ProcessEnv): Promise<Report>;
  /** Signs and writes an approval with a native key, as `reprise approve` would. */
  approve(stage: ApprovalStage, who: 'bob' | 'carol' | 'dave', evidence: ApprovalEvidence, overrides?: { manifest?: string; issuedAt?: Date; expiresAt?: Date }): Promise<string>;
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface RolloutOptions {
  /** Deep-merged into the plan copy (see copyPlan). */
  patch?: Record<string, unknown>;
  edit?: (data: Record<string, any>) => void;
  orders?: number;
}

export async function rollout(opts: RolloutOptions = {}): Promise<Rollout> {
  const dir = mkdtempSync(join(tmpdir(), 'reprise-rollout-'));
  const db = await createTestDatabase('rollout');
  await seedOrders(db.url, opts.orders ?? ORDERS);
  const mailer: TestHttpServer = await startHttpServer();
  const stream = uniqueName('invoice_events');
  const plan = copyPlan(
    join(examplesDir, 'orders-tax-recompute.yaml'),
    {
      selection: { expect: { min: 200, max: 10_000 } },
      rate: { itemsPerSecond: 20_000, live: undefined, concurrency: 4, chunkSize: 100, maxConnections: 6, protect: [] },
      dedupe: { namespace: uniqueName('invoices') },
      ...opts.patch,
    },
    (d) => {
      d.sideEffects.find((e: { name: string }) => e.name === 'publish_invoice_corrected').stream = stream;
      opts.edit?.(d);
    },
    join(dir, 'plans'),
  );
  const keys = { bob: newKey('bob'), carol: newKey('carol'), dave: newKey('dave') };
  const trust = join(dir, 'pipeline', 'allowed_signers');
  mkdirSync(join(dir, 'pipeline'), { recursive: true });
  writeFileSync(trust, (['bob', 'carol', 'dave'] as const).map((k) => `${k}@example.com ${keys[k].publicKeyLine}`).join('\n') + '\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NO_COLOR: '1',
    REPRISE_TRUST: undefined,
    REPRISE_STATE: undefined,
    ORDERS_DATABASE_URL: db.url,
    EVENTS_REDIS_URL: inject('redisUrl'),
    MAILER_URL: mailer.url,
    ALERT_WEBHOOK_URL: mailer.url,
  };
  const compiled = await compilePlanFile(plan.path);
  const reports = join(dir, 'reports');
  const approvals = join(dir, 'approvals');
  const w: Rollout = {
    dir,
    db,
    plan: plan.path,
    reports,
    approvals,
    trust,
    env,
    runId: compiled.runId,
    hash: compiled.hash,
    keys,
    cli: (args, extra = {}) => runCli(args, { ...env, ...extra }, dir, BIN),
    run: (stage, extra = [], e = {}) => w.cli(['run', plan.path, '--stage', stage, '--approvals', approvals, '--trust', trust, '--reports', reports, ...extra], e),
    async dryRun(e = {}) {
      const out = await runStage({ plan: plan.path, stage: 'dry-run', stateUrl: 'unused://', env: { ...env, ...e }, reportsDir: reports });
      return out.report!;
    },
    async approve(stage, who, evidence, o = {}) {
      const issuedAt = o.issuedAt ?? new Date(Date.now() - 60_000);
      const statement = buildStatement({
        manifest: o.manifest ?? compiled.hash,
        plan: compiled.plan.name,
        revision: compiled.plan.revision,
        stage,
        evidence,
        approver: `${who}@example.com`,
        issuedAt,
        expiresAt: o.expiresAt ?? new Date(issuedAt.getTime() + 3_600_000),
      });
      return writeApprovalFile(approvals, await signStatement(statement, keys[who]));
    },
    sql: (query, params = []) => withClient(db.url, async (c) => (await c.query(query, params)).rows),
    async close() {
      await mailer.close();
    },
  };
  return w;
}

/** The go/no-go rows of a human `run` output: check -> [status, detail]. */
export function goNoGoTable(stdout: string): Map<string, { status: string; detail: string }> {
  const lines = stdout.split('\n');
  const head = lines.findIndex((l) => /^\s+CHECK\s+RESULT\s+DETAIL$/.test(l));
  const out = new Map<string, { status: string; detail: string }>();
  if (head === -1) return out;
  for (const l of lines.slice(head + 1)) {
    const m = /^ {2}(\S+(?: \S+)?)\s{2,}(go|no-go|n\/a)\s{2,}(.*)$/.exec(l);
    if (!m) {
      if (/^\s{10,}refused /.test(l)) continue;
      break;
    }
    out.set(m[1]!, { status: m[2]!, detail: m[3]! });
  }
  return out;
}

export const CHECKS = ['approvals', 'count guard', 'count drift', 'fingerprints', 'dedupe store', 'live watermark', 'kill switch', 'protect probes'];

export function readJson(path: string): Record<string, any> {
  return JSON.parse(readFileSync(path, 'utf8'));
}
