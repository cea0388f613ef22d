import type { Command } from 'commander';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import type { Compensation } from '../../executor/effects/appliers.js';
import { reverseEffect, type CompensationRecord } from '../../executor/reverse.js';
import { contextOf } from '../main.js';
import type { Output } from '../output.js';
import { stateUrlOf } from '../state.js';
import { stopOnSignals } from './run.js';
import { printApprovalTable } from './verify.js';

interface ReverseCliOptions {
  effect: string;
  item?: string[];
  execute?: boolean;
  approvals: string;
  trust?: string;
  plan?: string;
  rate?: string;
  reports: string;
}

export function registerReverse(program: Command): void {
  program
    .command('reverse')
    .description('compensate what a run applied with the effect\'s declared reverse: lists the compensations (a dry-run) unless --execute, which needs a reverse approval')
    .argument('<run>', 'run id (<name>.r<rev>.<hash8>)')
    .requiredOption('--effect <name>', 'the effect whose applied calls are compensated')
    .option('--item <key...>', 'only these item keys (repeat the flag or list several)')
    .option('--execute', 'apply the compensations: needs approvals.reverse.min approvals of stage reverse')
    .option('--approvals <dir>', 'approval files (or one file)', 'approvals')
    .option('--trust <file>', 'allowed_signers file (env REPRISE_TRUST)')
    .option('--plan <file>', 'the plan file as it ran (needed for module effects; must compile to the run\'s manifest hash)')
    .option('--rate <n>', 'compensations per second (default: the plan\'s rate.itemsPerSecond)')
    .option('--reports <dir>', 'report directory', 'reports')
    .action(async (runId: string, opts: ReverseCliOptions, cmd: Command) => {
      const { out, globals } = contextOf(cmd);
      const rate = opts.rate === undefined ? undefined : Number(opts.rate);
      if (rate !== undefined && (!Number.isFinite(rate) || rate <= 0)) {
        throw new RepriseError('USAGE', `--rate must be a positive number of compensations per second, got ${opts.rate}`, { exit: ExitCode.invalidInput });
      }
      const stop = stopOnSignals();
      try {
        const outcome = await reverseEffect({
          runId,
          effect: opts.effect,
          items: opts.item,
          execute: Boolean(opts.execute),
          stateUrl: stateUrlOf(globals),
          planFile: opts.plan,
          approvalsDir: opts.approvals,
          trustPath: opts.trust,
          rate,
          reportsDir: opts.reports,
          signal: stop.signal,
          onApprovals: (r) => printApprovalTable(out, r),
          onCompensation: (c) => printCompensation(out, c),
          log: (level, message) => (level === 'warn' ? out.warn(message) : out.info(message)),
        });
        const o = outcome;
        if (o.itemsWithoutCalls.length) out.warn(`${o.itemsWithoutCalls.length} item${o.itemsWithoutCalls.length === 1 ? '' : 's'} given with --item never had an applied ${o.effect} call: ${o.itemsWithoutCalls.slice(0, 20).join(', ')}${o.itemsWithoutCalls.length > 20 ? ', …' : ''}`);
        if (o.reportFiles) out.info(`report    ${o.reportFiles.md}`);
        const text = !o.execute
          ? `reverse ${o.effect}: ${o.selected} compensation${o.selected === 1 ? '' : 's'} would be applied (dry-run; --execute with a reverse approval applies them); ${o.alreadyReversed} already reversed`
          : o.stop
            ? `reverse ${o.effect}: stopped (${o.stop.reason}: ${o.stop.detail}) after ${o.reversed} of ${o.selected}; run it again to continue`
            : `reverse ${o.effect}: ${o.reversed} reversed, ${o.alreadyReversed} already reversed before${o.report ? ` — report ${o.report.hash}` : ''}`;
        out.result(text, {
          level: 'result',
          run: o.runId,
          effect: o.effect,
          execute: o.execute,
          selected: o.selected,
          reversed: o.reversed,
          failed: o.failed,
          alreadyReversed: o.alreadyReversed,
          itemsWithoutCalls: o.itemsWithoutCalls,
          report: o.report?.hash ?? null,
          files: o.reportFiles ?? null,
          stop: o.stop ?? null,
          exitCode: o.exitCode,
        });
        process.exitCode = o.exitCode;
      } finally {
        stop.dispose();
      }
    });
}

function printCompensation(out: Output, c: CompensationRecord): void {
  out.record({ level: 'compensation', id: c.ledgerId, stage: c.stage, item: c.itemKey, effect: c.effect, call: c.callIndex, status: c.status, compensation: c.compensation ?? null, ...(c.rowCount !== undefined ? { rowCount: c.rowCount } : {}), ...(c.error ? { error: c.error } : {}) });
  const what = c.compensation ? describeCompensation(c.compensation) : `cannot be built: ${c.error ?? 'unknown'}`;
  const status = c.status === 'would-reverse' ? 'would reverse' : c.status;
  out.info(`${status.padEnd(13)} ${c.stage.padEnd(6)} ${c.itemKey} #${c.callIndex}: ${what}${c.rowCount !== undefined ? ` (${c.rowCount} row${c.rowCount === 1 ? '' : 's'})` : ''}${c.status === 'failed' && c.error ? ` — ${c.error}` : ''}`);
}

/** One line: the statement and its bound values, the request, the stream entry, the module call. */
export function describeCompensation(c: Compensation): string {
  const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  switch (c.kind) {
    case 'sql':
      return `sql on ${c.connection}: ${c.statement.replace(/\s+/g, ' ').trim()}  with ${c.values.map((v) => `:${v.name}=${json(v.value)}`).join(', ') || 'no values'}`;
    case 'http':
      return `${c.method} ${c.url} ${json(c.body)} (Idempotency-Key ${c.headers['Idempotency-Key']})`;
    case 'redis-stream':
      return `XADD ${c.stream} on ${c.connection}: ${Object.entries(c.fields).map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'module':
      return `${c.module}#${c.export}(${json(c.args)})`;
  }
}
