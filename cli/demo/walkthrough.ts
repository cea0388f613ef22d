/**
 * `reprise demo`: the whole workflow on an embedded database, as a user would type it. Every step
 * prints the command and runs the real CLI command in this process (so what you see is exactly
 * what `reprise <command>` prints), then says in a line what just happened and why it matters.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { compilePlanFile } from '../../compiler/compile.js';
import { openDatabase, type Database } from '../../executor/db/database.js';
import { StateStore } from '../../executor/store/store.js';
import { AUTHOR, HANDLER, HANDLER_FILE, IN_WINDOW, LIVE_RECOVERED, PLAN, PLAN_FILE, REVIEWER, SEED_SQL } from './scenario.js';

export interface DemoOptions {
  dir: string;
  force: boolean;
  /** Runs one CLI command in this process; returns its exit code. */
  cli: (args: string[]) => Promise<number>;
  write: (line: string) => void;
  color: boolean;
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const started = Date.now();
  const dir = resolve(o.dir);
  const rel = (p: string): string => relative(process.cwd(), p) || '.';
  const bold = (s: string): string => (o.color ? `\u001b[1m${s}\u001b[0m` : s);
  const dim = (s: string): string => (o.color ? `\u001b[2m${s}\u001b[0m` : s);
  const cyan = (s: string): string => (o.color ? `\u001b[36m${s}\u001b[0m` : s);
  let stepNo = 0;
  const TOTAL = 12;
  const step = (title: string): void => {
    stepNo++;
    o.write('');
    o.write(bold(`━━ ${stepNo}/${TOTAL}  ${title} ${'━'.repeat(Math.max(4, 60 - title.length))}`));
  };
  const say = (text: string): void => { for (const line of text.split('\n')) o.write(`  ${line}`); };
  const note = (text: string): void => { for (const line of text.split('\n')) o.write(dim(`  ↳ ${line}`)); };
  const run = async (args: string[], expect = ExitCode.ok): Promise<void> => {
    o.write(cyan(`  $ reprise ${args.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`));
    const code = await o.cli(args);
    if (code !== expect) {
      throw new RepriseError('DEMO_STEP_FAILED', `the demo step "reprise ${args[0]}" exited ${code} (expected ${expect})`, {
        exit: ExitCode.internal,
        hint: 'the output above says why; please report it',
      });
    }
  };

  if (existsSync(dir) && readdirSync(dir).length > 0) {
    if (!o.force) {
      throw new RepriseError('DEMO_DIR_EXISTS', `${rel(dir)} already exists and is not empty`, { exit: ExitCode.invalidInput, hint: 'pass --force to start the demo over in it, or --dir another folder' });
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.lock`, { force: true });
  }
  for (const sub of ['keys', 'approvals', 'reports', 'build']) mkdirSync(join(dir, sub), { recursive: true });
  const planPath = join(dir, PLAN_FILE);
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ private: true, type: 'module', description: 'reprise demo workspace' }, null, 2)}\n`);
  writeFileSync(planPath, PLAN);
  writeFileSync(join(dir, HANDLER_FILE), HANDLER);
  const dbUrl = `pglite:${join(dir, 'shop-db')}`;
  process.env.DEMO_SHOP_DATABASE_URL = dbUrl;
  const trust = join(dir, 'allowed_signers');
  const reports = join(dir, 'reports');
  const approvals = join(dir, 'approvals');
  const key = join(dir, 'keys', 'riley.THROWAWAY-DEMO-KEY');

  o.write(bold('reprise demo — replaying missed order confirmations, safely'));
  o.write(dim(`workspace ${rel(dir)} · embedded database ${rel(join(dir, 'shop-db'))} · nothing leaves this machine`));

  // The demo holds the embedded database open, so every command below reuses one instance.
  step('The incident');
  say('Starting the shop\'s embedded database (PGlite) and seeding it…');
  const db: Database = await openDatabase(dbUrl);
  try {
    await StateStore.on(db);
    await db.exec(SEED_SQL);
    const { rows } = await db.query<{ unconfirmed: number; recovered: number; events: number }>(
      `select count(*) filter (where confirmed_at is null)::int as unconfirmed,
              count(*) filter (where confirmed_at = '2026-11-03T13:00:30Z')::int as recovered,
              (select count(*)::int from outbox) as events
         from orders where status = 'paid' and created_at >= '2026-11-03T09:00:00Z' and created_at < '2026-11-03T13:00:00Z'`,
    );
    const r = rows[0]!;
    say(`The order-confirmation consumer was down from 09:00 to 13:00 UTC on 2026-11-03.`);
    say(`${IN_WINDOW} orders were paid in that window: ${r.unconfirmed} were never confirmed, and ${r.recovered} were`);
    say(`confirmed by the consumer itself when it came back (it claimed their event keys through reprise/live).`);
    say(`The outbox holds ${r.events} order.confirmed events from normal traffic. Support already emailed the`);
    say(`affected customers, so the automatic confirmation email must not go out again.`);
    say('');
    say(`${bold('The plan')} ${rel(planPath)} (author ${AUTHOR}) declares three effects:`);
    say('  mark_confirmed           sql   replay    idempotent: set confirmed_at');
    say('  publish_order_confirmed  sql   dedupe    once per order across backfill and live (outbox)');
    say('  email_confirmation       http  suppress  never sent by the backfill, only recorded');

    step('Validate the plan');
    await run(['validate', rel(planPath)]);
    note('schema and every compile-time rule; errors would point at file:line:col.');

    step('Compile: a frozen manifest and a runbook');
    await run(['compile', rel(planPath), '--out', rel(join(dir, 'build'))]);
    const compiled = await compilePlanFile(planPath);
    const runId = compiled.runId;
    note('the hash pins the plan, the handler and the compiler; approvals bind exactly this hash.');
    note(`reviewers read the runbook: ${rel(join(dir, 'build', `${compiled.plan.name}.r1.runbook.md`))}`);

    step('Dry-run: every effect captured, none applied');
    await run(['dry-run', rel(planPath), '--reports', rel(reports)]);
    const dryReport = join(reports, `${runId}.dry-run.report.json`);
    note(`the report shows what would change (before/after diffs of mark_confirmed): ${rel(join(reports, `${runId}.dry-run.report.md`))}`);

    step('A reviewer key (THROWAWAY, for this demo only)');
    await run(['keygen', '--out', rel(key), '--comment', 'THROWAWAY-reprise-demo-key-trust-it-nowhere-else']);
    const pub = readFileSync(`${key}.pub`, 'utf8').trim();
    writeFileSync(trust, `# THROWAWAY demo trust file: ${REVIEWER} may approve reprise plans with the demo key only.\n${REVIEWER} namespaces="reprise" ${pub}\n`);
    note(`in real life reviewers sign with the SSH key they sign git commits with; the pipeline's trust file is ${rel(trust)}.`);

    step('Approve the canary, binding the dry-run report');
    await run(['approve', rel(planPath), '--stage', 'canary', '--key', rel(key), '--approver', REVIEWER, '--evidence', rel(dryReport), '--out', rel(approvals)]);
    note(`${REVIEWER} read the runbook and the dry-run report; the author may not approve their own plan.`);

    step('Run the canary: 50 sampled orders for real, then its validation queries');
    await run(['run', rel(planPath), '--stage', 'canary', '--approvals', rel(approvals), '--trust', rel(trust), '--reports', rel(reports)]);
    const canaryReport = join(reports, `${runId}.canary.report.json`);
    note('the go/no-go table ran first: approvals, count guard, drift, fingerprints, dedupe store, kill switch.');

    step('Approve the full run, binding the canary report');
    await run(['approve', rel(planPath), '--stage', 'full', '--key', rel(key), '--approver', REVIEWER, '--evidence', rel(canaryReport), '--out', rel(approvals)]);

    step('Run the full backfill');
    await run(['run', rel(planPath), '--stage', 'full', '--approvals', rel(approvals), '--trust', rel(trust), '--reports', rel(reports)]);
    note('it continued after the canary\'s committed orders and never re-processed them.');

    step('The ledger: what was applied, suppressed and skipped');
    await run(['--state', dbUrl, 'ledger', runId, '--limit', '3']);
    note(`publish_order_confirmed skipped the ${LIVE_RECOVERED} orders the live consumer had already claimed; email_confirmation was never sent.`);

    step('Reverse one wrongly applied effect');
    const victim = (await db.query<{ id: string }>(`select id::text from orders where status = 'paid' and created_at >= '2026-11-03T09:00:00Z' order by created_at limit 1`)).rows[0]!.id;
    say(`Say order ${victim} should not have been confirmed. First, what would the compensation do?`);
    await run(['--state', dbUrl, 'reverse', runId, '--effect', 'mark_confirmed', '--item', victim, '--reports', rel(reports)]);
    await run(['approve', rel(planPath), '--stage', 'reverse', '--key', rel(key), '--approver', REVIEWER, '--out', rel(approvals)]);
    await run(['--state', dbUrl, 'reverse', runId, '--effect', 'mark_confirmed', '--item', victim, '--execute', '--approvals', rel(approvals), '--trust', rel(trust), '--reports', rel(reports)]);
    const back = (await db.query<{ confirmed_at: Date | null }>('select confirmed_at from orders where id = $1', [victim])).rows[0]!;
    note(`order ${victim} confirmed_at is back to ${back.confirmed_at === null ? 'NULL' : back.confirmed_at.toISOString()} (its value before the backfill); the ledger marks the call reversed.`);

    step('What happened');
    const final = (await db.query<{ unconfirmed: number; events: number; dup: number }>(
      `select (select count(*)::int from orders where status = 'paid' and created_at >= '2026-11-03T09:00:00Z' and created_at < '2026-11-03T13:00:00Z' and confirmed_at is null) as unconfirmed,
              (select count(*)::int from outbox where topic = 'order.confirmed') as events,
              (select count(*)::int from (select key from outbox group by key having count(*) > 1) d) as dup`,
    )).rows[0]!;
    say(`orders still unconfirmed in the window  ${final.unconfirmed} (the one reversed on purpose)`);
    say(`order.confirmed events in the outbox     ${final.events}, duplicated keys: ${final.dup}`);
    say('confirmation emails sent                 0 (suppressed, each call recorded in the ledger)');
    say(`reports, approvals, manifest, runbook    ${rel(dir)}/`);
    say(`took ${((Date.now() - started) / 1000).toFixed(1)} s. Next: README.md, docs/plan-reference.md, docs/approvals.md, docs/operations.md`);
    return ExitCode.ok;
  } finally {
    await db.close();
  }
}
