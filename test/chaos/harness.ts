/**
 * The chaos harness: trials of the crash scenario (test/support/crash.ts — every policy, both
 * deliveries, a sink without unique constraints) run through the CLI on dedicated PostgreSQL
 * and Redis servers, with faults injected at seeded random moments, resumed until the run
 * completes, then checked.
 *
 * A trial: a fresh database owned by a fresh role (so the role's connection limit can starve
 * the state store's pool) and a fresh dedupe namespace; size, chunk size, concurrency, workers,
 * lease TTL and dedupe store (redis | postgres) drawn from the seed; one or two faults, each in
 * an episode of its own (start the process(es), wait for a seeded point of progress, inject,
 * let the processes end); then `reprise run` again until the run completes; then the
 * invariants. Claims left unconfirmed are snapshotted after each fault: an at-least-once
 * re-delivery (or an at-most-once effect never applied) is explained only by one of those.
 *
 * Used by `npm run chaos` (test/chaos/run.mjs -> cli.ts) and the CI short run (short.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { seededRandom } from '../../executor/source/types.js';
import { checkInvariants, crashPlan, seedCrashDb, unconfirmedClaims, unconfirmedRedisClaims, type Invariants } from '../support/crash.js';
import { chunkLedger } from '../support/runs.js';
import { startPostgres, startRedis, type PgServer, type RedisServer } from '../support/servers.js';

export const ENGINE = resolve(import.meta.dirname, 'engine.mjs');
const FIXTURES = resolve(import.meta.dirname, 'fixtures');
const CALLS_PER_ITEM = 5;

export const FAULT_KINDS = [
  'kill-random',
  'kill-after-effect',
  'kill-before-commit',
  'kill-in-commit',
  'kill-after-commit',
  'kill-lease-holder',
  'lease-expiry-pause',
  'pg-terminate',
  'pg-restart',
  'redis-restart',
  'pool-exhaustion',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What each fault does, for the table and the docs. */
export const FAULT_DESCRIPTIONS: Record<FaultKind, string> = {
  'kill-random': 'SIGKILL of a worker process at a random moment',
  'kill-after-effect': 'SIGKILL (failpoint) right after an immediate effect, before its claim is confirmed and its chunk commits',
  'kill-before-commit': 'SIGKILL (failpoint) after a chunk is processed, before its commit transaction',
  'kill-in-commit': 'SIGKILL (failpoint) inside the commit transaction, everything written but COMMIT',
  'kill-after-commit': 'SIGKILL (failpoint) right after COMMIT, before claims in Redis are confirmed',
  'kill-lease-holder': 'two worker processes; one SIGKILLed while it holds a lease (the other takes the chunk over)',
  'lease-expiry-pause': 'a worker holding a lease SIGSTOPped past the lease TTL, the chunk taken over, then SIGCONT (fencing)',
  'pg-terminate': "pg_terminate_backend of every executor connection (application_name like 'reprise%'), 1-3 rounds",
  'pg-restart': 'PostgreSQL stopped (pg_ctl stop -m immediate) and started again',
  'redis-restart': 'Redis (the dedupe store) killed and started again',
  'pool-exhaustion': "every connection the role may open held by idle sessions, the executor's connections terminated, released after 1-3 s",
};

export interface ChaosServers {
  pg: PgServer;
  redis: RedisServer;
  destroy(): Promise<void>;
}

/** A dedicated PostgreSQL cluster (synchronous_commit on: an immediate stop loses no acknowledged commit) and Redis server. */
export async function startChaosServers(): Promise<ChaosServers> {
  const pgServer = await startPostgres();
  const redis = await startRedis().catch(async (e) => { pgServer.destroy(); throw e; });
  await admin(pgServer.url, async (c) => {
    await c.query('alter system set synchronous_commit = on');
    await c.query('select pg_reload_conf()');
  });
  return {
    pg: pgServer,
    redis,
    async destroy() {
      await redis.destroy();
      pgServer.destroy();
    },
  };
}

export interface TrialConfig {
  index: number;
  seed: string;
  n: number;
  chunkSize: number;
  concurrency: number;
  /** Workers per process (--workers). */
  workers: number;
  dedupeStore: 'postgres' | 'redis';
  itemsPerSecond: number;
  leaseTtlMs: number;
  faults: FaultKind[];
}

export interface TrialSizes {
  /** Items per trial. @defaultValue [800, 1600] */
  items?: [number, number];
  /** Seconds an undisturbed run lasts (sets itemsPerSecond). @defaultValue [2, 4] */
  seconds?: [number, number];
  /** Only these fault kinds. @defaultValue FAULT_KINDS */
  faults?: readonly FaultKind[];
}

/**
 * The trials of a seed: trial i's first fault walks every kind (in a seeded order), so any
 * FAULT_KINDS.length consecutive trials cover them all; about half get a second fault.
 */
export function planTrials(count: number, seed: string, sizes: TrialSizes = {}): TrialConfig[] {
  const random = seededRandom(`chaos:${seed}`);
  const kinds = sizes.faults?.length ? sizes.faults : FAULT_KINDS;
  const order = [...kinds];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const [minItems, maxItems] = sizes.items ?? [800, 1600];
  const [minSec, maxSec] = sizes.seconds ?? [2, 4];
  const out: TrialConfig[] = [];
  for (let index = 0; index < count; index++) {
    const r = seededRandom(`chaos:${seed}:${index}`);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const faults: FaultKind[] = [order[index % order.length]!];
    if (r() < 0.5) faults.push(pick(kinds));
    const n = Math.round(minItems + r() * (maxItems - minItems));
    const dedupeStore = faults.includes('redis-restart') ? 'redis' : r() < 0.5 ? 'redis' : 'postgres';
    out.push({
      index,
      seed: `${seed}:${index}`,
      n,
      chunkSize: pick([20, 25, 40, 50, 80]),
      concurrency: pick([2, 4, 6, 8]),
      workers: pick([1, 1, 2, 3]),
      dedupeStore,
      itemsPerSecond: Math.max(100, Math.round(n / (minSec + r() * (maxSec - minSec)))),
      leaseTtlMs: pick([1000, 1200, 1500]),
      faults,
    });
  }
  return out;
}

/** The invariants of one trial (the crash scenario's, and what the harness adds). */
export interface TrialInvariants extends Invariants {
  /** Items recorded as failed after their retries (reported, not lost; the faults must cause none). */
  itemsFailed: number;
  /** Committed chunks whose ledger is not exactly their items' calls, and ledger rows of chunks not committed. */
  chunkLedgerMismatches: number;
  /** 1 when the run could not be brought to completion by re-running it. */
  unresumable: number;
  /** Processes that did not end on their own within the episode's deadline (then killed). */
  hangs: number;
  /** Processes that ended with an internal error (exit 1) or any exit but 0 (done) and 4 (stopped, resumable), other than the harness's own kills. */
  crashes: number;
}

export interface TrialResult {
  config: TrialConfig;
  runId: string;
  /** Faults that actually hit the run mid-way, by kind. */
  injected: Partial<Record<FaultKind, number>>;
  /** Faults planned but not landed (the run finished first, or the failpoint was not reached). */
  missed: Partial<Record<FaultKind, number>>;
  invariants: TrialInvariants | undefined;
  /** Claims seen unconfirmed after a fault. */
  unconfirmedAtFaults: number;
  /** Dedupe keys whose effect call failed after reaching the sink (it may have been applied). */
  ambiguousCalls: number;
  /** Stale commits refused by the fencing token, and chunks a paused worker gave up (lease lost), seen in the logs. */
  fencedCommits: number;
  leaseLostDrops: number;
  /** lease-expiry-pause faults where the paused worker's chunk was taken over while it was stopped. */
  takeovers: number;
  /** Re-runs needed after the faults. */
  resumes: number;
  ms: number;
  /** Invariant violations, each described; empty when the trial passed. */
  violations: string[];
  /** What the harness saw go wrong (a process's exit code and the end of its stderr), for the report. */
  notes: string[];
  error?: string;
}

interface Proc {
  child: ChildProcess;
  /** A control command (abort, resume), not a worker. */
  control?: boolean;
  out: string;
  err: string;
  /** `host:pid:random` from the start event; lease owners are `<processId>/w<i>`. */
  processId: Promise<string | undefined>;
  runId: Promise<string | undefined>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startProc(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [ENGINE, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', err: '', processId: undefined as never, runId: undefined as never, done: undefined as never };
  let resolveStart: (v: { process?: string; run?: string } | undefined) => void = () => undefined;
  const started = new Promise<{ process?: string; run?: string } | undefined>((r) => { resolveStart = r; });
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    p.out += d.toString();
    partial += d.toString();
    let nl: number;
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.includes('"type":"start"')) {
        try { resolveStart(JSON.parse(line)); } catch { /* partial line */ }
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => { p.err += d.toString(); });
  p.done = new Promise((res) => child.on('close', (code, signal) => { resolveStart(undefined); res({ code, signal }); }));
  p.processId = started.then((s) => s?.process);
  p.runId = started.then((s) => s?.run);
  return p;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, application_name: 'chaos-admin' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Retries `fn` while the server is coming back. */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(200);
    }
  }
}

async function waitProgress(url: string, runId: string, target: number, procs: Proc[], timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  for (const p of procs) void p.done.then(() => { exited = true; });
  while (Date.now() < deadline) {
    const n = await admin(url, async (c) => (await c.query(`select count(*)::int as n from reprise.chunks where run_id = $1 and state = 'committed'`, [runId])).rows[0].n as number).catch(() => -1);
    if (n >= target) return true;
    if (exited) return false;
    await sleep(40);
  }
  return false;
}

/** The chunk a process holds a lease on now (polled until one is held, or the process ends). */
async function leaseOf(url: string, runId: string, proc: Proc, timeoutMs = 30_000): Promise<{ seq: number; generation: number } | undefined> {
  const id = await proc.processId;
  if (!id) return undefined;
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.done.then(() => { exited = true; });
  while (Date.now() < deadline && !exited) {
    const row = await admin(url, async (c) =>
      (await c.query(`select seq, generation from reprise.chunks where run_id = $1 and state = 'leased' and lease_owner like $2 || '/%' and lease_expires_at > now() order by seq limit 1`, [runId, id])).rows[0],
    ).catch(() => undefined);
    if (row) return { seq: row.seq as number, generation: row.generation as number };
    await sleep(20);
  }
  return undefined;
}

async function progress(url: string, runId: string): Promise<{ committed: number; total: number }> {
  return admin(url, async (c) => {
    const r = (await c.query(`select count(*) filter (where state = 'committed')::int as committed, count(*)::int as total from reprise.chunks where run_id = $1`, [runId])).rows[0];
    return { committed: r.committed as number, total: r.total as number };
  }).catch(() => ({ committed: 0, total: 0 }));
}

export interface TrialOptions {
  log?: (line: string) => void;
  /** Kept for inspection when a trial fails. @defaultValue false: dropped either way */
  keepFailed?: boolean;
}

export async function runTrial(servers: ChaosServers, cfg: TrialConfig, opts: TrialOptions = {}): Promise<TrialResult> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const r = seededRandom(`fault:${cfg.seed}`);
  const between = (lo: number, hi: number): number => lo + r() * (hi - lo);
  const name = `chaos_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const role = name;
  const roleLimit = 60;
  const adminUrl = servers.pg.urlFor('postgres');
  await eventually(() => admin(adminUrl, async (c) => {
    await c.query(`create role ${role} login connection limit ${roleLimit}`);
    await c.query(`create database ${name} owner ${role}`);
  }));
  const url = `postgres://${role}@127.0.0.1:${servers.pg.port}/${name}`;
  const superUrl = servers.pg.urlFor(name);
  await seedCrashDb(url, cfg.n);
  const namespace = name;
  const plan = crashPlan({
    n: cfg.n,
    namespace,
    chunkSize: cfg.chunkSize,
    concurrency: cfg.concurrency,
    itemsPerSecond: cfg.itemsPerSecond,
    dedupeStore: cfg.dedupeStore,
    retries: { max: 3, backoffMs: 100 },
    fixturesDir: FIXTURES,
  });
  const reports = mkdtempSync(join(tmpdir(), 'reprise-chaos-reports-'));
  const ambiguousLog = join(reports, 'ambiguous-calls.log');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CHAOS_AMBIGUOUS_LOG: ambiguousLog,
    CRASH_DB_URL: url,
    CRASH_REDIS_URL: servers.redis.url,
    REPRISE_LEASE_TTL_MS: String(cfg.leaseTtlMs),
    REPRISE_OUTAGE_TIMEOUT_MS: '20000',
    REPRISE_FAILPOINTS: '',
    REPRISE_DEBUG: '1',
    NO_COLOR: '1',
  };
  const args = ['--json', 'run', plan.path, '--stage', 'full', '--reports', reports, '--workers', String(cfg.workers)];
  const result: TrialResult = {
    config: cfg, runId: '', injected: {}, missed: {}, invariants: undefined, unconfirmedAtFaults: 0, ambiguousCalls: 0,
    fencedCommits: 0, leaseLostDrops: 0, takeovers: 0, resumes: 0, ms: 0, violations: [], notes: [],
  };
  const unconfirmed = new Set<string>();
  const snapshot = async (): Promise<void> => {
    const keys = cfg.dedupeStore === 'redis' ? await unconfirmedRedisClaims(servers.redis.url, namespace) : await unconfirmedClaims(superUrl, namespace).catch(() => []);
    for (const k of keys) unconfirmed.add(k);
  };
  /**
   * Polls the unconfirmed claims every 25 ms until the returned function is called: faults the
   * processes survive (connections cut, servers restarted) leave a claim unconfirmed only until
   * the item's retry re-applies and confirms it, often before a single snapshot could see it.
   */
  const watchClaims = (): (() => Promise<void>) => {
    let on = true;
    const loop = (async () => {
      while (on) {
        await snapshot().catch(() => undefined);
        await sleep(25);
      }
    })();
    return async () => { on = false; await loop; };
  };
  let hangs = 0;
  let unexpectedExits = 0;
  const all: Proc[] = [];
  const finish = async (procs: Proc[], deadlineMs = 120_000): Promise<void> => {
    const t0 = Date.now();
    const timer = sleep(deadlineMs).then(() => 'timeout' as const);
    for (const p of procs) {
      const end = await Promise.race([p.done, timer]);
      if (end === 'timeout') {
        hangs++;
        result.notes.push(`a process did not end within ${deadlineMs} ms: ${p.err.trim().split('\n').slice(-12).join('\n').slice(-3000)}`);
        log(`  trial ${cfg.index}: a process did not end within ${deadlineMs} ms; killed. stderr tail: ${p.err.slice(process.env.CHAOS_FULL_STDERR ? -20_000 : -500)}`);
        p.child.kill('SIGCONT');
        p.child.kill('SIGKILL');
        await p.done;
      }
    }
    const ends = await Promise.all(procs.map((p) => p.done));
    procs.forEach((p, i) => {
      const e = ends[i]!;
      // Exit 3 naming an unreachable store or target is a refusal before processing (a process
      // started while PostgreSQL was down): nothing was processed, the run resumes later.
      const refusedServerDown = e.code === 3 && /^error\[(STATE_UNAVAILABLE|TARGET_UNREACHABLE)\]/m.test(p.err);
      if (refusedServerDown) result.notes.push('a process refused to start, a server down (exit 3)');
      if (e.code !== null && e.code !== 0 && e.code !== 4 && !refusedServerDown && !p.control) {
        unexpectedExits++;
        // The first error line names what failed (an error object's properties follow it), the tail where.
        const lines = p.err.trim().split('\n').filter((l) => !l.startsWith('{"level":"warn"'));
        const first = lines.findIndex((l) => /error/i.test(l));
        const shown = first >= 0 && first < lines.length - 12 ? [lines[first]!, '…', ...lines.slice(-12)] : lines.slice(-12);
        result.notes.push(`a process exited ${e.code}: ${shown.join('\n').slice(-3000)}`);
        log(`  trial ${cfg.index}: a process exited ${e.code}: ${(process.env.CHAOS_FULL_STDERR ? p.err : p.err.trim().split('\n').slice(-3).join(' | ')).slice(0, 6000)}`);
      }
    });
    log(`  trial ${cfg.index} +${((Date.now() - started) / 1000).toFixed(1)}s: processes ended after ${Date.now() - t0} ms: ${ends.map((e) => e.code ?? e.signal).join(', ')}`);
  };
  const spawnProcs = (count: number, extra: NodeJS.ProcessEnv = {}): Proc[] => {
    const ps = Array.from({ length: count }, () => startProc(args, { ...env, ...extra }));
    all.push(...ps);
    return ps;
  };
  const hit = (kind: FaultKind, landed: boolean): void => {
    log(`  trial ${cfg.index} +${((Date.now() - started) / 1000).toFixed(1)}s: ${kind} ${landed ? 'injected' : 'missed'}`);
    const bucket = landed ? result.injected : result.missed;
    bucket[kind] = (bucket[kind] ?? 0) + 1;
  };

  // An operator's control command (abort, resume) through the CLI, on the run's state store.
  const control = async (action: 'abort' | 'resume'): Promise<void> => {
    if (!result.runId) return;
    const p = startProc(['--state', url, action, result.runId, ...(action === 'abort' ? ['--reason', 'chaos: next fault'] : [])], env);
    await p.done;
  };
  // Process-ending faults first; a fault the processes survive is followed, when another fault
  // comes after it, by an abort once the run made progress again (so the next fault finds work
  // left), and a resume before the next episode.
  const ending = (k: FaultKind): boolean => k.startsWith('kill-') && k !== 'kill-lease-holder';
  const faults = [...cfg.faults].sort((a, b) => Number(ending(b)) - Number(ending(a)));
  const thenAbort = async (procs: Proc[], isLast: boolean): Promise<void> => {
    if (isLast || !result.runId) return;
    const { committed } = await progress(superUrl, result.runId);
    await waitProgress(superUrl, result.runId, committed + 1, procs, 30_000);
    if (procs.some((p) => p.child.exitCode === null && p.child.signalCode === null)) await control('abort');
  };
  try {
    for (const [fi, kind] of faults.entries()) {
      const isLast = fi === faults.length - 1;
      if (fi > 0) await control('resume');
      // Each fault lands in an episode of its own, at a seeded point of the work left.
      const before = result.runId ? await progress(superUrl, result.runId) : { committed: 0, total: 0 };
      const left = before.total ? before.total - before.committed : Math.ceil(cfg.n / cfg.chunkSize);
      if (result.runId && left <= 1) { hit(kind, false); continue; }
      const targetChunks = before.committed + Math.floor(r() * Math.max(1, left * 0.4));
      const delay = Math.floor(between(0, 250));
      log(`  trial ${cfg.index} +${((Date.now() - started) / 1000).toFixed(1)}s: ${kind} at ${targetChunks} committed chunks (+${delay} ms)`);
      const failpoint = (name: string, upTo: number): Proc[] => spawnProcs(1, { REPRISE_FAILPOINTS: `${name}=${1 + Math.floor(r() * Math.max(1, upTo))}` });

      if (kind === 'kill-after-effect' || kind === 'kill-before-commit' || kind === 'kill-in-commit' || kind === 'kill-after-commit') {
        const leftItems = Math.ceil((left * cfg.chunkSize) / 2);
        const procs = kind === 'kill-after-effect' ? failpoint('after-effect', leftItems * 2) : failpoint(kind.slice('kill-'.length), Math.ceil(left / 2));
        result.runId ||= (await procs[0]!.runId) ?? '';
        await finish(procs);
        const end = await procs[0]!.done;
        hit(kind, end.signal === 'SIGKILL');
      } else if (kind === 'kill-random') {
        const procs = spawnProcs(1);
        result.runId ||= (await procs[0]!.runId) ?? '';
        const reached = result.runId ? await waitProgress(superUrl, result.runId, targetChunks, procs) : false;
        if (reached) await sleep(delay);
        const landed = procs[0]!.child.exitCode === null && procs[0]!.child.signalCode === null;
        procs[0]!.child.kill('SIGKILL');
        await finish(procs);
        hit(kind, landed && (await progress(superUrl, result.runId)).committed < (await progress(superUrl, result.runId)).total);
      } else if (kind === 'kill-lease-holder' || kind === 'lease-expiry-pause') {
        const procs = spawnProcs(2);
        const [a, b] = procs as [Proc, Proc];
        result.runId ||= (await a.runId) ?? (await b.runId) ?? '';
        await b.processId;
        const reached = result.runId ? await waitProgress(superUrl, result.runId, targetChunks, procs) : false;
        const lease = reached ? await leaseOf(superUrl, result.runId, a) : undefined;
        if (!lease) {
          hit(kind, false);
        } else if (kind === 'kill-lease-holder') {
          a.child.kill('SIGKILL');
          await snapshot();
          hit(kind, true);
        } else {
          a.child.kill('SIGSTOP');
          await snapshot();
          // Wait until the lease expired and another worker took the chunk (or committed it).
          const deadline = Date.now() + cfg.leaseTtlMs + 8_000;
          let taken = false;
          while (Date.now() < deadline) {
            const row = await admin(superUrl, async (c) => (await c.query('select state, generation from reprise.chunks where run_id = $1 and seq = $2', [result.runId, lease.seq])).rows[0]).catch(() => undefined);
            if (row && (row.generation > lease.generation || row.state === 'committed')) { taken = true; break; }
            if (b.child.exitCode !== null) break;
            await sleep(50);
          }
          // Let the successor get well into the chunk before the paused worker wakes up.
          await sleep(Math.floor(between(0, 600)));
          a.child.kill('SIGCONT');
          if (taken) result.takeovers++;
          hit(kind, true);
        }
        await thenAbort(procs, isLast);
        await finish(procs);
      } else {
        const procs = spawnProcs(r() < 0.3 ? 2 : 1);
        result.runId ||= (await procs[0]!.runId) ?? '';
        const reached = result.runId ? await waitProgress(superUrl, result.runId, targetChunks, procs) : false;
        if (!reached) {
          hit(kind, false);
        } else {
          await sleep(delay);
          const unwatch = watchClaims();
          if (kind === 'pg-terminate') {
            const rounds = 1 + Math.floor(r() * 3);
            for (let i = 0; i < rounds; i++) {
              await admin(adminUrl, (c) => c.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name like 'reprise%'`, [name])).catch(() => undefined);
              await sleep(Math.floor(between(50, 400)));
            }
          } else if (kind === 'pg-restart') {
            servers.pg.stop('immediate');
            await sleep(Math.floor(between(200, 2000)));
            servers.pg.start();
          } else if (kind === 'redis-restart') {
            await servers.redis.stop();
            await sleep(Math.floor(between(200, 1500)));
            await servers.redis.start();
          } else if (kind === 'pool-exhaustion') {
            await exhaustPool(servers, name, role, roleLimit, Math.floor(between(1000, 3000)));
          }
          hit(kind, true);
          // Past the items' retry backoffs (100, 200, 400 ms): a re-delivery has happened by then.
          await sleep(1500);
          await unwatch();
        }
        await eventually(snapshot);
        if (reached) await thenAbort(procs, isLast);
        await finish(procs);
      }
      await eventually(snapshot);
    }

    // Resume until done.
    await control('resume');
    log(`  trial ${cfg.index} +${((Date.now() - started) / 1000).toFixed(1)}s: resuming`);
    let completed = false;
    for (let attempt = 0; attempt < 8 && !completed; attempt++) {
      const [p] = spawnProcs(1);
      await finish([p!]);
      const end = await p!.done;
      result.runId ||= (await p!.runId) ?? '';
      result.resumes++;
      const finished = p!.out.split('\n').find((l) => l.includes('"type":"finished"'));
      completed = end.code === 0 && Boolean(finished && /"outcome":"(completed|already-completed)"/.test(finished));
      if (!completed) {
        log(`  trial ${cfg.index}: resume ${attempt + 1} exited ${end.code ?? end.signal}: ${p!.err.trim().split('\n').slice(-2).join(' | ').slice(0, 300)}`);
        await eventually(snapshot);
        await sleep(500);
      }
    }
    log(`  trial ${cfg.index} +${((Date.now() - started) / 1000).toFixed(1)}s: checking`);
    for (const p of all) {
      const text = p.out + p.err;
      result.fencedCommits += (text.match(/results dropped \(fencing\)/g) ?? []).length;
      result.leaseLostDrops += (text.match(/released \(lease lost\)/g) ?? []).length;
    }
    result.unconfirmedAtFaults = unconfirmed.size;
    // Calls that failed after reaching the sink (a connection lost mid-statement) may have been
    // applied: their retry is an at-least-once re-delivery, explained like an unconfirmed claim.
    const ambiguous = existsSync(ambiguousLog) ? new Set(readFileSync(ambiguousLog, 'utf8').split('\n').filter(Boolean)) : new Set<string>();
    result.ambiguousCalls = ambiguous.size;
    const inv = await checkInvariants(superUrl, result.runId, cfg.n, new Set([...unconfirmed, ...ambiguous]));
    const cl = await chunkLedger(superUrl, result.runId, CALLS_PER_ITEM);
    const failed = await admin(superUrl, async (c) => Number((await c.query('select count(*) as n from reprise.item_failures where run_id = $1', [result.runId])).rows[0].n));
    result.invariants = {
      ...inv,
      itemsFailed: failed,
      chunkLedgerMismatches: cl.committedIncomplete + cl.ledgerOfUncommitted,
      unresumable: completed ? 0 : 1,
      hangs,
      crashes: unexpectedExits,
    };
    result.violations = violationsOf(result.invariants);
  } catch (e) {
    result.error = (e as Error).stack ?? String(e);
    result.violations.push(`trial error: ${(e as Error).message}`);
  } finally {
    for (const p of all) if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGCONT'); p.child.kill('SIGKILL'); }
    await Promise.all(all.map((p) => p.done));
    result.ms = Date.now() - started;
    if (!(opts.keepFailed && result.violations.length)) {
      await eventually(() => admin(adminUrl, async (c) => {
        await c.query(`drop database if exists ${name} with (force)`);
        await c.query(`drop role if exists ${role}`);
      }), 30_000).catch(() => undefined);
      rmSync(plan.dir, { recursive: true, force: true });
    }
    rmSync(reports, { recursive: true, force: true });
  }
  return result;
}

/**
 * Starves the state store's pool: a few idle sessions of the trial's role are opened, the role's
 * CONNECTION LIMIT is lowered to what it holds apart from the executor, and the executor's own
 * connections are terminated. Until the sessions are released `holdMs` later, every connection
 * the role may have is held by an idle session and the executor can open none (53300).
 */
async function exhaustPool(servers: ChaosServers, db: string, role: string, limit: number, holdMs: number): Promise<void> {
  const superUrl = servers.pg.urlFor('postgres');
  const holders: pg.Client[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const c = new pg.Client({ connectionString: `postgres://${role}@127.0.0.1:${servers.pg.port}/${db}`, application_name: 'chaos-hog' });
      c.on('error', () => undefined);
      await c.connect();
      holders.push(c);
    }
    await admin(superUrl, async (c) => {
      const others = (await c.query(`select count(*)::int as n from pg_stat_activity where usename = $1 and application_name not like 'reprise%'`, [role])).rows[0].n as number;
      await c.query(`alter role ${role} connection limit ${Math.max(holders.length, others)}`);
      await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and application_name like 'reprise%'`, [role]);
    });
    await sleep(holdMs);
  } finally {
    await admin(superUrl, (c) => c.query(`alter role ${role} connection limit ${limit}`)).catch(() => undefined);
    await Promise.all(holders.map((c) => c.end().catch(() => undefined)));
  }
}

/** Invariant totals that must be zero (at-least-once re-deliveries are counted, and must each be explained). */
export const MUST_BE_ZERO = [
  'itemsLost',
  'outsideWindow',
  'suppressApplied',
  'transactionalDuplicates',
  'amoDuplicates',
  'amoLostWithoutUnconfirmedClaim',
  'aloMissing',
  'aloRedeliveredWithoutUnconfirmedClaim',
  'committedChunksRerun',
  'ledgerWithoutSink',
  'sinkWithoutLedger',
  'itemsFailed',
  'chunkLedgerMismatches',
  'unresumable',
  'hangs',
  'crashes',
] as const satisfies ReadonlyArray<keyof TrialInvariants>;

export function violationsOf(inv: TrialInvariants): string[] {
  const out: string[] = [];
  for (const k of MUST_BE_ZERO) if (inv[k] !== 0) out.push(`${k} = ${inv[k]}`);
  if (inv.itemsProcessed !== inv.items) out.push(`itemsProcessed = ${inv.itemsProcessed} of ${inv.items}`);
  return out;
}

export interface ChaosSummary {
  trials: number;
  failedTrials: number;
  injected: Record<FaultKind, number>;
  missed: Record<FaultKind, number>;
  totals: Record<keyof TrialInvariants | 'unconfirmedAtFaults' | 'ambiguousCalls' | 'fencedCommits' | 'leaseLostDrops' | 'takeovers' | 'resumes', number>;
  ms: number;
}

export function summarize(results: TrialResult[]): ChaosSummary {
  const zeroFaults = (): Record<FaultKind, number> => Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const injected = zeroFaults();
  const missed = zeroFaults();
  const totals: Record<string, number> = {};
  for (const res of results) {
    for (const [k, v] of Object.entries(res.injected)) injected[k as FaultKind] += v ?? 0;
    for (const [k, v] of Object.entries(res.missed)) missed[k as FaultKind] += v ?? 0;
    for (const [k, v] of Object.entries(res.invariants ?? {})) totals[k] = (totals[k] ?? 0) + (v as number);
    for (const k of ['unconfirmedAtFaults', 'ambiguousCalls', 'fencedCommits', 'leaseLostDrops', 'takeovers', 'resumes'] as const) totals[k] = (totals[k] ?? 0) + res[k];
  }
  return {
    trials: results.length,
    failedTrials: results.filter((x) => x.violations.length).length,
    injected,
    missed,
    totals: totals as ChaosSummary['totals'],
    ms: results.reduce((s, x) => s + x.ms, 0),
  };
}

const short: Partial<Record<FaultKind, string>> = {
  'kill-random': 'kill', 'kill-after-effect': 'k-eff', 'kill-before-commit': 'k-pre', 'kill-in-commit': 'k-in', 'kill-after-commit': 'k-post',
  'kill-lease-holder': 'k-lease', 'lease-expiry-pause': 'stop', 'pg-terminate': 'pg-term', 'pg-restart': 'pg-rst', 'redis-restart': 'rd-rst', 'pool-exhaustion': 'pool',
};

/** One line per trial. */
export function formatTrial(res: TrialResult): string {
  const c = res.config;
  const inv = res.invariants;
  const faults = c.faults.map((f) => `${short[f]}${res.injected[f] ? '' : '?'}`).join('+');
  const cells = [
    String(c.index).padStart(3),
    `${String(c.n).padStart(5)} items`,
    `chunk ${String(c.chunkSize).padStart(3)}`,
    `conc ${c.concurrency}`,
    `w ${c.workers}`,
    c.dedupeStore.padEnd(8),
    faults.padEnd(16),
    inv ? `lost ${inv.itemsLost} out ${inv.outsideWindow} sup ${inv.suppressApplied} txdup ${inv.transactionalDuplicates} amo-dup ${inv.amoDuplicates} amo-unsent ${inv.amoLost} alo-re ${inv.aloRedelivered}/${inv.aloRedeliveredWithoutUnconfirmedClaim} rerun ${inv.committedChunksRerun} late ${inv.lateLandings} l-s ${inv.ledgerWithoutSink}/${inv.sinkWithoutLedger} fail ${inv.itemsFailed} unres ${inv.unresumable} crash ${inv.crashes}` : 'no invariants',
    `${(res.ms / 1000).toFixed(1)}s`,
    res.violations.length ? `VIOLATION: ${res.violations.join(', ')}` : 'ok',
  ];
  return cells.join(' | ');
}

/** The final table: trials, faults by kind, every invariant total. */
export function formatSummary(s: ChaosSummary, seed: string): string {
  const t = s.totals;
  const v = (k: keyof ChaosSummary['totals']): number => t[k] ?? 0;
  const rows: Array<[string, string | number, string]> = [
    ['trials', s.trials, `seed ${seed}; ${s.failedTrials} with a violation; ${(s.ms / 1000).toFixed(0)} s of trials`],
    ...FAULT_KINDS.map((k): [string, number, string] => [`fault: ${k}`, s.injected[k], s.missed[k] ? `(+${s.missed[k]} planned, not landed: the run ended first)` : '']),
    ['items (all trials)', v('items'), ''],
    ['items processed', v('itemsProcessed'), 'distinct items with their transactional effect applied'],
    ['items lost', v('itemsLost'), 'must be 0'],
    ['items failed', v('itemsFailed'), 'must be 0 (no item may fail because of a fault)'],
    ['items processed outside the window', v('outsideWindow'), 'must be 0'],
    ['suppress effects applied', v('suppressApplied'), 'must be 0'],
    ['transactional (deferred sql) applied twice', v('transactionalDuplicates'), 'must be 0'],
    ['dedupe at-most-once applied twice', v('amoDuplicates'), 'must be 0'],
    ['dedupe at-most-once never applied', v('amoLost'), 'allowed: each a claim left unconfirmed by a fault, or a call failed after reaching the sink'],
    ['  of which unexplained', v('amoLostWithoutUnconfirmedClaim'), 'must be 0'],
    ['dedupe at-least-once applied twice', v('aloRedelivered'), 'allowed: each a claim left unconfirmed by a fault, or a call failed after reaching the sink'],
    ['  of which unexplained', v('aloRedeliveredWithoutUnconfirmedClaim'), 'must be 0'],
    ['dedupe at-least-once never applied', v('aloMissing'), 'must be 0'],
    ['committed chunks re-run', v('committedChunksRerun'), 'must be 0'],
    ['late landings of a call started before its chunk committed', v('lateLandings'), 'allowed: a call that outlived its lease (frozen by SIGSTOP, or stuck in connection retries during a restart); at-most-once stays at most once, at-least-once repeats are counted above'],
    ['ledger rows without a sink row', v('ledgerWithoutSink'), 'must be 0'],
    ['sink rows without a ledger row', v('sinkWithoutLedger'), 'must be 0'],
    ['chunk/ledger mismatches', v('chunkLedgerMismatches'), 'must be 0'],
    ['runs that could not be resumed to completion', v('unresumable'), 'must be 0'],
    ['processes hung', v('hangs'), 'must be 0'],
    ['processes crashed (exit other than 0, 4, or 3 for a server down at start)', v('crashes'), 'must be 0'],
    ['claims unconfirmed after a fault', v('unconfirmedAtFaults'), 'what explains re-deliveries'],
    ['dedupe calls failed after reaching the sink', v('ambiguousCalls'), 'connection lost mid-statement: maybe applied; also explains re-deliveries'],
    ['stale commits refused by fencing', v('fencedCommits'), `paused workers' commits; ${v('leaseLostDrops')} chunks given up on a lost lease; ${v('takeovers')} takeovers while paused`],
    ['re-runs to complete', v('resumes'), ''],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => String(r[1]).length));
  const lines = [`| ${'what'.padEnd(w0)} | ${'count'.padStart(w1)} | note`, `| ${'-'.repeat(w0)} | ${'-'.repeat(w1)} | ---`];
  for (const [a, b, c] of rows) lines.push(`| ${a.padEnd(w0)} | ${String(b).padStart(w1)} | ${c}`);
  return lines.join('\n');
}
