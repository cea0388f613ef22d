import type { Command } from 'commander';
import { RepriseError } from '../../compiler/errors.js';
import { controlDirOf, readStatusSnapshots, writeControlRequest } from '../../executor/stages/control-file.js';
import { actor, StateStore, type Control, type RunRow } from '../../executor/store/store.js';
import { contextOf } from '../main.js';
import { stateUrlOf } from '../state.js';

/** Opens the state store, or reports that an embedded store is held by a running process. */
export async function openStateOrLocked(url: string): Promise<StateStore | 'locked'> {
  try {
    return await StateStore.open(url);
  } catch (e) {
    if (e instanceof RepriseError && e.code === 'STATE_LOCKED' && controlDirOf(url)) return 'locked';
    throw e;
  }
}

const VERBS: Record<'pause' | 'resume' | 'abort', { control: Control; says: string }> = {
  pause: { control: 'pause', says: 'workers finish their in-flight items, give their chunks back and wait' },
  resume: { control: 'run', says: 'workers take chunks again' },
  abort: { control: 'abort', says: 'workers finish their in-flight items, give their chunks back and exit 4; run it again to resume' },
};

export function registerControl(program: Command): void {
  for (const verb of ['pause', 'resume', 'abort'] as const) {
    program
      .command(verb)
      .description(`${verb} a run (recorded in its events with who and when)`)
      .argument('<run>', 'run id (<name>.r<rev>.<hash8>)')
      .option('--reason <text>', 'why, for the audit log')
      .action(async (runId: string, opts: { reason?: string }, cmd: Command) => {
        const { out, globals } = contextOf(cmd);
        const url = stateUrlOf(globals);
        const { control, says } = VERBS[verb];
        const store = await openStateOrLocked(url);
        if (store === 'locked') {
          const path = writeControlRequest(controlDirOf(url)!, runId, { control, actor: actor(), at: new Date().toISOString(), reason: opts.reason });
          out.result(`${verb}: requested for ${runId} (the running process applies it within a second) — ${says}`, { level: 'result', run: runId, control, via: path });
          return;
        }
        try {
          const run = await store.setControl(runId, control, actor(), opts.reason);
          out.result(`${verb}: ${run.id} control=${run.control} — ${says}`, { level: 'result', run: run.id, control: run.control, status: run.status });
        } finally {
          await store.close();
        }
      });
  }
}

function fmtAgo(d: Date | string | null | undefined): string {
  if (!d) return 'never';
  const s = Math.max(0, Math.round((Date.now() - new Date(d).getTime()) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('stage, progress, rate, throttle, last progress and control flag of one run or all runs')
    .argument('[run]', 'run id (all runs when omitted)')
    .action(async (runId: string | undefined, _opts, cmd: Command) => {
      const { out, globals } = contextOf(cmd);
      const url = stateUrlOf(globals);
      const store = await openStateOrLocked(url);
      if (store === 'locked') {
        const snaps = readStatusSnapshots(controlDirOf(url)!).filter((s) => !runId || s.runId === runId);
        if (!snaps.length) throw new RepriseError('STATE_LOCKED', `the embedded store ${url} is in use and no running stage reports a status`, { hint: 'try again in a second' });
        for (const s of snaps) {
          out.result(
            `${String(s.runId)}  ${String(s.stage)}  ${String(s.status)}  ${String(s.done)}/${String(s.total)}  ${Number(s.ratePerSecond).toFixed(0)}/s  errors ${String(s.failed)}  control=${String(s.control)}  last progress ${fmtAgo(s.lastProgressAt as string)}${s.throttle ? `  throttled by ${JSON.stringify(s.throttle)}` : ''}`,
            { level: 'status', source: 'running-process', ...s },
          );
        }
        return;
      }
      try {
        const runs: RunRow[] = runId ? [await store.getRun(runId)].filter((r): r is RunRow => Boolean(r)) : await store.listRuns();
        if (runId && !runs.length) throw new RepriseError('RUN_NOT_FOUND', `no run ${runId} in ${url}`, { hint: 'reprise status lists the runs of this store' });
        if (!runs.length) out.info(`no runs in ${url}`);
        for (const r of runs) {
          const total = r.total_items ?? 0;
          const done = r.items_done + r.items_failed;
          const recent = await store.db.query<{ n: string }>(
            `select coalesce(sum(items + errors), 0)::text as n from reprise.chunks where run_id = $1 and committed_at > now() - interval '60 seconds'`,
            [r.id],
          );
          const rate = Number(recent.rows[0]?.n ?? 0) / 60;
          const workers = await store.activeWorkers(r.id);
          const line = `${r.id}  ${r.stage}  ${r.status}  ${done}/${total}${total ? ` (${((100 * done) / total).toFixed(1)}%)` : ''}  ${rate.toFixed(1)}/s  errors ${r.items_failed}  chunks ${r.chunks_committed}/${r.chunks_total}  control=${r.control}  workers ${workers}  last progress ${fmtAgo(r.last_progress_at)}${r.throttle ? `  throttled by ${r.throttle.probe}=${r.throttle.value}` : ''}`;
          out.result(line, {
            level: 'status', run: r.id, plan: r.plan, revision: r.revision, manifest: r.manifest_hash, stage: r.stage, status: r.status, control: r.control,
            done, total, failed: r.items_failed, ratePerSecond: rate, chunks: { committed: r.chunks_committed, total: r.chunks_total },
            workers, throttle: r.throttle, throttledMs: r.throttled_ms, lastProgressAt: r.last_progress_at,
          });
        }
      } finally {
        await store.close();
      }
    });
}

export function registerLedger(program: Command): void {
  program
    .command('ledger')
    .description('what a run applied, suppressed, skipped or claimed, effect by effect')
    .argument('<run>', 'run id')
    .option('--effect <name>', 'only this effect')
    .option('--item <key...>', 'only these item keys')
    .option('--status <status>', 'applied | suppressed | skipped-dup | claimed | failed | reversed')
    .option('--limit <n>', 'most rows listed', '1000')
    .action(async (runId: string, opts: { effect?: string; item?: string[]; status?: string; limit: string }, cmd: Command) => {
      const { out, globals } = contextOf(cmd);
      const store = await StateStore.open(stateUrlOf(globals));
      try {
        if (!(await store.getRun(runId))) throw new RepriseError('RUN_NOT_FOUND', `no run ${runId} in this state store`, { hint: 'reprise status lists runs' });
        const rows = await store.ledger(runId, { effect: opts.effect, items: opts.item, status: opts.status, limit: Number(opts.limit) });
        const summary = await store.ledgerSummary(runId);
        if (!out.json) {
          out.info('effect                          policy    status       count');
          for (const s of summary.filter((s) => (!opts.effect || s.effect === opts.effect) && (!opts.status || s.status === opts.status))) {
            out.info(`${s.effect.padEnd(31)} ${s.policy.padEnd(9)} ${s.status.padEnd(12)} ${s.n}`);
          }
          out.info('');
        }
        for (const r of rows) {
          out.result(
            `${r.stage.padEnd(6)} ${r.item_key.padEnd(14)} ${r.effect} #${r.call_index} ${r.status}${r.dedupe_key ? ` key=${r.dedupe_key}` : ''}${r.error ? ` error=${r.error}` : ''}`,
            { level: 'ledger', id: r.id, run: r.run_id, stage: r.stage, item: r.item_key, effect: r.effect, call: r.call_index, policy: r.policy, status: r.status, dedupeKey: r.dedupe_key, payload: r.payload, before: r.before, error: r.error, at: r.at, reversedAt: r.reversed_at, reversedBy: r.reversed_by },
          );
        }
      } finally {
        await store.close();
      }
    });
}
