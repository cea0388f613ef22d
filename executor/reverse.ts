/**
 * Reversal: the declared compensation (`reverse`) of effects a run applied, read from its ledger.
 *
 *   1. open the state store and the run; the manifest is the run's own (`runs.manifest`, its hash
 *      recomputed), with `--plan` it must also be what the plan compiles to (module effects need it)
 *   2. select the ledger calls of one effect with status `applied` (optionally some items), latest
 *      first, so an item that called the effect twice is unwound in reverse order
 *   3. without `execute`: describe each compensation with its values bound — a dry-run
 *   4. with `execute`: `approvals.reverse.min` approvals of stage `reverse`, the target is the one
 *      the run's reports fingerprinted, the run is not being processed; then each compensation,
 *      rate-limited, marked `reversed` right after it succeeds (in the same transaction when the
 *      effect writes to the state database); a reverse report and events
 *
 * Idempotent: calls already `reversed` are never selected again, so a second `execute` does
 * nothing. See docs/reversal.md.
 */
import { dirname, resolve } from 'node:path';
import type { Manifest, Plan } from '../schema/manifest.types.js';
import type { Report } from '../schema/report.types.js';
import { ExitCode, RepriseError } from '../compiler/errors.js';
import { canonicalJson, contentHash } from '../compiler/manifest.js';
import { loadTrustFile, readApprovalSources, resolveTrustPath } from './approvals/load.js';
import { approvalIdsOf, assertApproved, verifyApprovals, type VerifyResult } from './approvals/verify.js';
import { createAppliers, type Compensation } from './effects/appliers.js';
import { emptyEffectCounts, finalizeReport, ThroughputRecorder, writeReportFiles, type ReportPaths } from './reports/index.js';
import { reportFingerprints } from './stages/dry-run.js';
import { compileForRun } from './stages/open.js';
import { actor, runNotFound, StateStore, type LedgerRow, type RunRow } from './store/store.js';
import { postgresFingerprint, Targets, type Fingerprint } from './targets.js';
import { LocalTokenBucket, sleep } from './throttle/limiter.js';

export interface ReverseOptions {
  runId: string;
  /** The effect whose applied calls are compensated. */
  effect: string;
  /** Only these item keys. @defaultValue every item */
  items?: string[];
  /** Apply the compensations; otherwise only list them. @defaultValue false */
  execute?: boolean;
  /** The state store holding the run (with `planFile`, found as `run` finds it instead). */
  stateUrl: string;
  env?: NodeJS.ProcessEnv;
  /** The plan file: must compile to the run's manifest; needed to execute module effects (their folder). */
  planFile?: string;
  /** Approval files for `execute`. @defaultValue 'approvals' */
  approvalsDir?: string;
  /** `--trust`; without it REPRISE_TRUST. */
  trustPath?: string;
  /** Compensations per second. @defaultValue the plan's rate.itemsPerSecond */
  rate?: number;
  /** Where the reverse report goes. @defaultValue 'reports' */
  reportsDir?: string;
  /** @defaultValue () => new Date() */
  now?: () => Date;
  /** Stops between compensations (SIGINT/SIGTERM): exit 4, resumable. */
  signal?: AbortSignal;
  /** Each compensation as it is listed, applied or failed. */
  onCompensation?(c: CompensationRecord): void;
  /** The approval check's result (execute), to print its table. */
  onApprovals?(r: VerifyResult): void;
  /** Progress and warnings. */
  log?(level: 'info' | 'warn', message: string): void;
}

/** One ledger call and its compensation. */
export interface CompensationRecord {
  ledgerId: number;
  stage: string;
  itemKey: string;
  callIndex: number;
  effect: string;
  /** What is (or would be) done; absent when it cannot be built (an argument is missing). */
  compensation?: Compensation;
  status: 'would-reverse' | 'reversed' | 'failed';
  /** The row count the sql compensation's statement reported (of its outer statement). */
  rowCount?: number;
  error?: string;
}

export interface ReverseOutcome {
  runId: string;
  effect: string;
  execute: boolean;
  /** Applied calls selected (what would be, or was set out to be, compensated). */
  selected: number;
  reversed: number;
  failed: number;
  /** Calls of the selection already `reversed` before (skipped). */
  alreadyReversed: number;
  /** `--item` keys with no applied or reversed call of the effect. */
  itemsWithoutCalls: string[];
  report?: Report;
  reportFiles?: ReportPaths;
  exitCode: number;
  stop?: { reason: string; detail: string };
}

const PAGE = 500;

export async function reverseEffect(opts: ReverseOptions): Promise<ReverseOutcome> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  const compiled = opts.planFile ? await compileForRun(opts.planFile) : undefined;
  // Trust is read first, so a missing trust file fails before anything is opened (exit 2).
  const trust = opts.execute ? loadTrustFile(resolveTrustPath(opts.trustPath, env)) : undefined;
  const planForStore = compiled?.plan;
  const storeTargets = planForStore?.checkpoint.connection ? new Targets(planForStore, env) : undefined;
  const store = storeTargets ? await StateStore.on(await storeTargets.sql(planForStore!.checkpoint.connection!)) : await StateStore.open(opts.stateUrl);
  let targets: Targets | undefined;
  try {
    const row = await store.getRun(opts.runId);
    if (!row) {
      const e = runNotFound(opts.runId);
      throw new RepriseError(e.code, e.message, { exit: e.exit, hint: `${e.hint}; a plan that keeps its state on a connection (checkpoint.connection) needs --state with that database's URL, or --plan` });
    }
    const manifest = runManifest(row);
    if (compiled && compiled.hash !== manifest.hash) {
      throw new RepriseError('REVERSE_PLAN_MISMATCH', `${opts.planFile} compiles to ${compiled.hash}, but run ${row.id} ran ${manifest.hash}`, {
        exit: ExitCode.refused,
        hint: 'pass the plan exactly as it was when the run ran (check it out at that commit): reversal runs the run\'s own effects',
      });
    }
    const plan = manifest.plan;
    const effect = plan.sideEffects.find((e) => e.name === opts.effect);
    if (!effect) {
      throw new RepriseError('EFFECT_UNKNOWN', `run ${row.id} has no effect ${opts.effect}`, { exit: ExitCode.invalidInput, hint: `its effects: ${plan.sideEffects.map((e) => e.name).join(', ')}` });
    }
    if (!effect.reverse) {
      throw new RepriseError('REVERSE_NOT_DECLARED', `effect ${effect.name} (${effect.kind}, backfill ${effect.backfill}) declares no \`reverse\`: reprise cannot compensate it`, {
        exit: ExitCode.invalidInput,
        hint: effect.backfill === 'suppress'
          ? 'the backfill suppresses it, so it applied nothing; its ledger rows (reprise ledger --status suppressed) list what was held back'
          : `identify its calls with reprise ledger ${row.id} --effect ${effect.name} --status applied and compensate by hand (the runbook's "identify and reverse" section); declare a reverse in the next revision`,
      });
    }
    if (opts.execute && effect.kind === 'module' && !compiled) {
      throw new RepriseError('MODULE_NEEDS_PLAN', `effect ${effect.name} is a module effect: its compensation ${effect.reverse.export} lives in ${effect.module}, beside the plan`, {
        exit: ExitCode.invalidInput,
        hint: 'pass --plan with the plan file as it was when the run ran (its compile must equal the run\'s manifest hash)',
      });
    }
    targets = new Targets(plan, env);
    const planDir = compiled ? (compiled.source.dir ?? dirname(resolve(opts.planFile!))) : process.cwd();
    const applier = createAppliers(plan, targets, planDir, env).get(effect.name)!;
    // sql effects on the checkpoint connection wrote to the state database itself (in the chunk
    // commit): their compensations go there too, in one transaction with the `reversed` mark.
    const onStateDb = effect.kind === 'sql' && plan.checkpoint.connection !== null && effect.connection === plan.checkpoint.connection;

    const items = opts.items?.length ? [...new Set(opts.items)] : undefined;
    const alreadyReversed = await countCalls(store, row.id, effect.name, 'reversed', items);
    const selected = await countCalls(store, row.id, effect.name, 'applied', items);
    const itemsWithoutCalls = items ? await itemsWithout(store, row.id, effect.name, items) : [];
    const idempotencyKey = (r: LedgerRow): string => r.dedupe_key ?? `reprise:${row.id}:${r.item_key}:${r.effect}:${r.call_index}`;
    const describe = (r: LedgerRow): { compensation?: Compensation; error?: string } => {
      try {
        return { compensation: applier.describeReverse!(argsOf(r), beforeOf(r), { runId: row.id, idempotencyKey: idempotencyKey(r) }) };
      } catch (e) {
        return { error: (e as Error).message };
      }
    };
    const base = { runId: row.id, effect: effect.name, selected, alreadyReversed, itemsWithoutCalls };

    if (!opts.execute) {
      for await (const r of appliedCalls(store, row.id, effect.name, items)) {
        opts.onCompensation?.({ ...recordOf(r), ...describe(r), status: 'would-reverse' });
      }
      return { ...base, execute: false, reversed: 0, failed: 0, exitCode: ExitCode.ok };
    }

    // ---- execute: approvals, the right target, nobody processing the run --------------------
    const approvals = await checkReverseApprovals(store, row, plan, manifest.hash, trust!, opts);
    opts.onApprovals?.(approvals);
    assertApproved(approvals);
    if (selected === 0) {
      log('info', `nothing to reverse: no applied call of ${effect.name}${items ? ' for these items' : ''} (${alreadyReversed} already reversed)`);
      return { ...base, execute: true, reversed: 0, failed: 0, exitCode: ExitCode.ok };
    }
    const fingerprints = await checkTarget(store, row.id, effect, onStateDb, targets);
    if ((row.status === 'running' || row.status === 'throttled') && (await store.activeWorkers(row.id, 10_000)) > 0) {
      throw new RepriseError('RUN_ACTIVE', `run ${row.id} is being processed (${row.stage}, ${row.status})`, {
        exit: ExitCode.refused,
        hint: `reverse after it stopped: reprise pause ${row.id} (or abort) first, or wait for it to finish`,
      });
    }
    const who = actor();
    for (const a of approvals.accepted) {
      const usedBy = await store.recordApprovalUse(a.approvalId, row.id, 'reverse', a.approver);
      if (usedBy !== row.id) throw new RepriseError('APPROVAL_ALREADY_USED', `${a.file}: already used by run ${usedBy}`, { exit: ExitCode.refused, hint: 'each approval allows one run; ask for a new approval' });
    }
    await store.recordEvent(row.id, who, 'reverse-start', {
      effect: effect.name,
      items: items ?? null,
      calls: selected,
      approvals: approvals.accepted.map((a) => ({ id: a.approvalId, approver: a.approver })),
    });

    const startedAt = Date.now();
    const throughput = new ThroughputRecorder({ startedAt });
    const limiter = new LocalTokenBucket(opts.rate ?? plan.rate.itemsPerSecond);
    const { max: retries, backoffMs } = plan.processing.retries;
    let reversed = 0;
    let failure: { record: CompensationRecord; at: string } | undefined;
    let stop: { reason: string; detail: string } | undefined;
    for await (const r of appliedCalls(store, row.id, effect.name, items)) {
      if (opts.signal?.aborted) {
        stop = { reason: 'signal', detail: 'interrupted (SIGINT/SIGTERM)' };
        break;
      }
      try {
        await limiter.acquire(1, opts.signal);
      } catch {
        stop = { reason: 'signal', detail: 'interrupted (SIGINT/SIGTERM)' };
        break;
      }
      const described = describe(r);
      let lastError = described.error ?? '';
      let rowCount: number | undefined;
      let done = false;
      let applied = false;
      for (let attempt = 1; !described.error && attempt <= retries + 1 && !done && !applied; attempt++) {
        const ctx = {
          signal: AbortSignal.timeout(plan.processing.timeoutMs),
          runId: row.id,
          itemKey: r.item_key,
          dedupeKey: r.dedupe_key ?? undefined,
          idempotencyKey: idempotencyKey(r),
        };
        try {
          if (onStateDb) {
            rowCount = await store.db.transaction(async (tx) => {
              const res = await applier.reverse!(argsOf(r), beforeOf(r), { ...ctx, runner: tx });
              await store.markReversed(row.id, [r.id], who, tx);
              return res.rowCount;
            });
            done = true;
          } else {
            rowCount = (await applier.reverse!(argsOf(r), beforeOf(r), ctx)).rowCount;
            applied = true;
          }
        } catch (e) {
          lastError = (e as Error).message;
          if (attempt <= retries) await sleep(backoffMs * 2 ** (attempt - 1), opts.signal).catch(() => undefined);
        }
      }
      if (applied) {
        // Applied on another database: mark it now (retrying the mark, never the compensation).
        await markReversedRetrying(store, row.id, r.id, who);
        done = true;
      }
      const record: CompensationRecord = { ...recordOf(r), ...(described.compensation ? { compensation: described.compensation } : {}), status: done ? 'reversed' : 'failed', ...(rowCount !== undefined ? { rowCount } : {}), ...(done ? {} : { error: lastError }) };
      opts.onCompensation?.(record);
      throughput.add(1);
      if (!done) {
        failure = { record, at: new Date().toISOString() };
        stop = { reason: 'failed', detail: `${r.item_key}: ${lastError}` };
        break;
      }
      reversed++;
    }

    const finished = Date.now();
    const failed = failure ? 1 : 0;
    const summary = await store.ledgerSummary(row.id);
    const report = finalizeReport({
      kind: 'reprise/report@1',
      runId: row.id,
      plan: plan.name,
      revision: plan.revision,
      manifest: manifest.hash,
      stage: 'reverse',
      outcome: !stop ? 'completed' : stop.reason === 'failed' ? 'failed' : 'aborted',
      startedAt: new Date(startedAt).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationMs: finished - startedAt,
      count: null,
      counts: { selected, processed: reversed + failed, succeeded: reversed, failed, skippedOutsideWindow: 0, remaining: Math.max(0, selected - reversed) },
      effects: plan.sideEffects.map((e) => {
        const counts = emptyEffectCounts();
        for (const s of summary) if (s.effect === e.name && s.status in counts) counts[s.status as keyof typeof counts] += s.n;
        return { name: e.name, kind: e.kind, policy: e.backfill, delivery: e.delivery, live: e.live, counts };
      }),
      errors: { total: failed, samples: failure ? [{ itemKey: failure.record.itemKey, attempt: retries + 1, message: failure.record.error ?? 'failed', at: failure.at }] : [] },
      throttle: { throttledMs: 0, episodes: [] },
      throughput: throughput.toJSON(finished),
      validations: [],
      fingerprints: reportFingerprints(fingerprints),
      canary: null,
      preview: [],
      abort: stop ?? null,
      workers: 1,
    });
    await store.saveReport(row.id, 'reverse', report.hash, report);
    const reportFiles = await writeReportFiles(opts.reportsDir ?? 'reports', report);
    await store.recordEvent(row.id, who, 'reversed', { effect: effect.name, items: items ?? null, reversed, failed, report: report.hash, ...(stop ? { stop } : {}) });
    return { ...base, execute: true, reversed, failed, report, reportFiles, exitCode: stop ? ExitCode.stopped : ExitCode.ok, ...(stop ? { stop } : {}) };
  } finally {
    await targets?.close();
    await store.close();
    await storeTargets?.close();
  }
}

/** The run's manifest as recorded, its hash recomputed: reversal runs exactly what the run ran. */
function runManifest(row: RunRow): Manifest {
  const m = row.manifest;
  const { hash: _h, ...body } = m;
  if (m.hash !== row.manifest_hash || contentHash(body) !== row.manifest_hash) {
    throw new RepriseError('RUN_MANIFEST_TAMPERED', `the manifest recorded for run ${row.id} no longer hashes to ${row.manifest_hash}`, {
      exit: ExitCode.refused,
      hint: 'the state store was edited by hand; reversal will not run statements it cannot trace to an approved manifest',
    });
  }
  return m;
}

async function checkReverseApprovals(store: StateStore, row: RunRow, plan: Plan, manifestHash: string, trust: ReturnType<typeof loadTrustFile>, opts: ReverseOptions): Promise<VerifyResult> {
  const sources = readApprovalSources(opts.approvalsDir ?? 'approvals');
  const uses = await store.approvalUses(approvalIdsOf(sources));
  const latest = async (stage: string): Promise<string | undefined> => (await store.latestReport(row.id, stage))?.hash;
  // No usedAt: every reversal needs approvals valid now, even ones this run used before.
  return verifyApprovals({
    manifestHash,
    plan: plan.name,
    revision: plan.revision,
    author: plan.author,
    stage: 'reverse',
    min: plan.approvals.reverse.min,
    expectedEvidence: { dryRunReport: await latest('dry-run'), canaryReport: await latest('canary'), fullReport: await latest('full') },
    approvals: sources,
    trust,
    now: (opts.now ?? (() => new Date()))(),
    runId: row.id,
    priorUses: new Map([...uses].map(([id, u]) => [id, u.runId])),
  });
}

/**
 * The effect's target must be the one the run's reports fingerprinted (compensating staging's
 * rows with production's ledger, or the reverse, is refused). HTTP and module effects have none.
 */
async function checkTarget(store: StateStore, runId: string, effect: Plan['sideEffects'][number], onStateDb: boolean, targets: Targets): Promise<Record<string, Fingerprint>> {
  if (effect.kind !== 'sql' && effect.kind !== 'redis-stream') return {};
  const current = onStateDb ? await postgresFingerprint(store.db) : await targets.fingerprint(effect.connection);
  const now = reportFingerprints({ [effect.connection]: current });
  for (const stage of ['full', 'canary']) {
    const rep = await store.latestReport<Report>(runId, stage);
    const recorded = rep?.body.fingerprints?.[effect.connection];
    if (!recorded) continue;
    if (canonicalJson(recorded) !== canonicalJson(now[effect.connection])) {
      throw new RepriseError('FINGERPRINT_MISMATCH', `connection \`${effect.connection}\` is ${JSON.stringify(now[effect.connection])} here, but the run's ${stage} report recorded ${JSON.stringify(recorded)}`, {
        exit: ExitCode.refused,
        hint: `point the connection's environment variable at the target the run wrote to${onStateDb ? ' (for this effect: --state, the database holding the run)' : ''}`,
      });
    }
    break;
  }
  return { [effect.connection]: current };
}

/** The state store may blip between a compensation and its mark: retry the mark, never the compensation. */
async function markReversedRetrying(store: StateStore, runId: string, id: number, who: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await store.markReversed(runId, [id], who);
      return;
    } catch (e) {
      if (attempt >= 5) {
        throw new RepriseError('REVERSE_MARK_FAILED', `compensation of ledger call ${id} applied, but it could not be marked reversed: ${(e as Error).message}`, {
          exit: ExitCode.stopped,
          hint: 'run the reversal again once the state store is back: this call will be compensated a second time, so only effects whose compensation is idempotent are safe',
        });
      }
      await sleep(200 * 2 ** attempt);
    }
  }
}

/** Applied calls of an effect, latest first, a page at a time (keyset on the ledger id). */
async function* appliedCalls(store: StateStore, runId: string, effect: string, items: string[] | undefined): AsyncGenerator<LedgerRow> {
  let before = Number.MAX_SAFE_INTEGER;
  for (;;) {
    const { rows } = await store.db.query<LedgerRow>(
      `select * from reprise.ledger
        where run_id = $1 and effect = $2 and status = 'applied' and ($3::text[] is null or item_key = any($3::text[])) and id < $4
        order by id desc limit $5`,
      [runId, effect, items ?? null, before, PAGE],
    );
    for (const r of rows) yield { ...r, id: Number(r.id) };
    if (rows.length < PAGE) return;
    before = Number(rows[rows.length - 1]!.id);
  }
}

async function countCalls(store: StateStore, runId: string, effect: string, status: string, items: string[] | undefined): Promise<number> {
  const { rows } = await store.db.query<{ n: number }>(
    `select count(*)::int as n from reprise.ledger where run_id = $1 and effect = $2 and status = $3 and ($4::text[] is null or item_key = any($4::text[]))`,
    [runId, effect, status, items ?? null],
  );
  return rows[0]?.n ?? 0;
}

async function itemsWithout(store: StateStore, runId: string, effect: string, items: string[]): Promise<string[]> {
  const { rows } = await store.db.query<{ item_key: string }>(
    `select distinct item_key from reprise.ledger where run_id = $1 and effect = $2 and status in ('applied', 'reversed') and item_key = any($3::text[])`,
    [runId, effect, items],
  );
  const seen = new Set(rows.map((r) => r.item_key));
  return items.filter((k) => !seen.has(k));
}

function recordOf(r: LedgerRow): Pick<CompensationRecord, 'ledgerId' | 'stage' | 'itemKey' | 'callIndex' | 'effect'> {
  return { ledgerId: r.id, stage: r.stage, itemKey: r.item_key, callIndex: r.call_index, effect: r.effect };
}

const argsOf = (r: LedgerRow): Record<string, unknown> => (r.payload && typeof r.payload === 'object' ? (r.payload as Record<string, unknown>) : {});
const beforeOf = (r: LedgerRow): Record<string, unknown> | null => (r.before && typeof r.before === 'object' ? (r.before as Record<string, unknown>) : null);
