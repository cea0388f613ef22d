/**
 * Live protection: the plan's `rate.protect[]` probes, read every `rate.checkEvery`, and the
 * LiveGuard that holds the run at zero items per second while any of them is unhealthy.
 *
 * A probe is **unhealthy** when its value is over its `max`, and also when it cannot say: the
 * query or request fails, returns no number, or takes longer than its `timeoutMs`. Fail closed —
 * a probe that cannot see live traffic cannot vouch for it.
 *
 * Throttling is immediate: the first unhealthy check holds every worker (no item starts; items
 * already running finish). Resuming is not: it takes `healthyStreak` consecutive checks with
 * every probe healthy (2 by default, so at least one `checkEvery` of calm), so a value hovering
 * around its limit does not flap the run on and off. A probe that trips again soon after a
 * resume (within `flapWindow` checks) doubles the streak the next resume needs, up to
 * `maxHealthyStreak`: a backfill that hurts live traffic each time it resumes backs off
 * exponentially instead of hurting it every other check. A resume that holds for `flapWindow`
 * checks brings the streak back to `healthyStreak`.
 *
 * After a resume, and at the start, the run comes back gradually: `pace()` is 1/8 of the rate,
 * doubling at every healthy check (1/4, 1/2, then the full rate three checks later), so a
 * backfill whose full rate hurts live traffic trips the probe at a fraction of it rather than at
 * full speed. The rate limiter applies it to this process's reservations.
 *
 * Every process of a run reads the probes itself and holds its own workers; the run's row in the
 * state store says `throttled` while any process is (see journal.ts).
 *
 * SQL probes use a connection of their own per probed database (`application_name`
 * `reprise:<plan>:probe`), outside the run's `maxConnections` budget, so a busy backfill cannot
 * starve its own probes into timeouts; each query runs read-only under `statement_timeout`.
 */
import type { Plan, Probe, UrlRef } from '../../schema/manifest.types.js';
import { openDatabase, type Database } from '../db/database.js';
import type { Targets } from '../targets.js';
import { sleep, type LiveGuard, type ThrottleState } from './limiter.js';

/** One reading of one probe. */
export interface ProbeReading {
  probe: string;
  /** Healthy: a number, not over `max`. */
  ok: boolean;
  /** The number read, or null when the probe failed to give one. */
  value: number | null;
  max: number;
  /** Why it is unhealthy (`value 7.2 over max 5`, `timed out after 2000 ms`, `error: …`), or null. */
  reason: string | null;
  /** How long the reading took. */
  ms: number;
  /** When the reading finished (epoch ms). */
  at: number;
}

export interface ProbeRunner {
  readonly probe: Probe;
  read(): Promise<ProbeReading>;
  close(): Promise<void>;
}

// ---- reading probes ---------------------------------------------------------------------------

/** Opens a runner for every probe of the plan (SQL probes share one connection per database). */
export function openProbes(plan: Plan, targets: Pick<Targets, 'url'>, env: NodeJS.ProcessEnv = process.env, now: () => number = Date.now): ProbeRunner[] {
  const dbs = new Map<string, ProbeDb>();
  const runners: ProbeRunner[] = [];
  for (const probe of plan.rate.protect) {
    if (probe.http) {
      runners.push(httpProbe(probe, env, now));
      continue;
    }
    const conn = probe.connection!;
    let db = dbs.get(conn);
    if (!db) {
      const users = plan.rate.protect.filter((p) => p.connection === conn).length;
      db = new ProbeDb(() => openDatabase(targets.url(conn), { max: users, applicationName: `reprise:${plan.name}:probe` }));
      dbs.set(conn, db);
    }
    runners.push(sqlProbe(probe, db, now));
  }
  return runners;
}

/** The probes' own connection to one database, opened by the first reading (a refusal is a failed reading, fail closed), shared by its probes. */
class ProbeDb {
  private opened: Promise<Database> | undefined;
  private users = 0;
  constructor(private readonly open: () => Promise<Database>) {}

  get(): Promise<Database> {
    if (!this.opened) {
      const p = Promise.resolve().then(this.open);
      p.catch(() => { if (this.opened === p) this.opened = undefined; });
      this.opened = p;
    }
    return this.opened;
  }

  use(): void {
    this.users++;
  }

  /** Closes the connection when its last probe closes. */
  async release(): Promise<void> {
    if (--this.users > 0 || !this.opened) return;
    const p = this.opened;
    this.opened = undefined;
    await (await p.catch(() => undefined))?.close().catch(() => undefined);
  }
}

function reading(probe: Probe, started: number, now: () => number, value: number | null, failure: string | null): ProbeReading {
  const at = now();
  if (failure !== null) return { probe: probe.name, ok: false, value, max: probe.max, reason: failure, ms: at - started, at };
  const ok = value !== null && value <= probe.max;
  return { probe: probe.name, ok, value, max: probe.max, reason: ok ? null : `value ${value} over max ${probe.max}`, ms: at - started, at };
}

/** A number from a probe's raw value: finite numbers and numeric strings (pg returns numeric as text). */
export function probeNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

/** Runs `fn` with a deadline; a late result is a timeout (the work itself may go on in the background). */
async function withDeadline<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new ProbeTimeout(ms);
      ac.abort(e);
      reject(e);
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

class ProbeTimeout extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
  }
}

function failureText(e: unknown): string {
  if (e instanceof ProbeTimeout) return e.message;
  const err = e as { message?: string; code?: string };
  return `error: ${err?.message ?? String(e)}${err?.code && !String(err.message).includes(err.code) ? ` (${err.code})` : ''}`;
}

function sqlProbe(probe: Probe, pool: ProbeDb, now: () => number): ProbeRunner {
  pool.use();
  return {
    probe,
    async read() {
      const started = now();
      try {
        const value = await withDeadline(probe.timeoutMs, async () => {
          const db = await pool.get();
          const { rows } = await db.transaction(async (tx) => {
            // The server stops the query at the deadline too, so a slow probe does not pile up.
            if (db.kind === 'postgres') await tx.query(`set local statement_timeout = ${Math.max(1, Math.ceil(probe.timeoutMs))}`);
            return tx.query<Record<string, unknown>>(probe.query!);
          }, { readOnly: true });
          if (rows.length === 0) throw new Error('the query returned no row');
          if (!('value' in rows[0]!)) throw new Error(`the query returned no \`value\` column (columns: ${Object.keys(rows[0]!).join(', ') || 'none'})`);
          const v = probeNumber(rows[0]!.value);
          if (v === null) throw new Error(`\`value\` is not a number: ${JSON.stringify(rows[0]!.value)}`);
          return v;
        });
        return reading(probe, started, now, value, null);
      } catch (e) {
        return reading(probe, started, now, null, failureText(e));
      }
    },
    close: () => pool.release(),
  };
}

function resolveUrl(ref: UrlRef, env: NodeJS.ProcessEnv): string {
  if (typeof ref === 'string') return ref;
  const v = env[ref.env];
  if (!v) throw new Error(`environment variable ${ref.env} (the probe's URL) is not set`);
  return v;
}

/** Reads `a.b.0.c` out of a JSON document. */
export function fieldAt(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function httpProbe(probe: Probe, env: NodeJS.ProcessEnv, now: () => number): ProbeRunner {
  const field = probe.http!.field;
  return {
    probe,
    async read() {
      const started = now();
      try {
        const value = await withDeadline(probe.timeoutMs, async (signal) => {
          const res = await fetch(resolveUrl(probe.http!.url, env), { method: 'GET', signal, headers: { accept: 'application/json, text/plain' } });
          const body = await res.text();
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          let raw: unknown = body;
          if (field) {
            let doc: unknown;
            try { doc = JSON.parse(body); } catch { throw new Error('the body is not JSON'); }
            raw = fieldAt(doc, field);
            if (raw === undefined) throw new Error(`the body has no \`${field}\``);
          }
          const v = probeNumber(raw);
          if (v === null) throw new Error(`${field ? `\`${field}\`` : 'the body'} is not a number: ${JSON.stringify(typeof raw === 'string' ? raw.slice(0, 80) : raw)}`);
          return v;
        });
        return reading(probe, started, now, value, null);
      } catch (e) {
        return reading(probe, started, now, null, failureText(e));
      }
    },
    async close() {},
  };
}

/** Reads every probe once, concurrently. */
export async function readProbes(runners: ProbeRunner[]): Promise<ProbeReading[]> {
  return Promise.all(runners.map((r) => r.read()));
}

// ---- the guard --------------------------------------------------------------------------------

export interface ProbeGuardOptions {
  /** Time between the starts of two checks. */
  checkEveryMs: number;
  /** Consecutive healthy checks needed to resume after a throttle. @defaultValue 2 */
  healthyStreak?: number;
  /** Most consecutive healthy checks a resume can require after repeated quick re-trips. @defaultValue 32 */
  maxHealthyStreak?: number;
  /** A trip within this many checks of the last resume doubles the next required streak. @defaultValue 10 */
  flapWindow?: number;
  /** Every check's readings, after the guard has acted on them. */
  onCheck?(readings: ProbeReading[], state: ThrottleState): void;
  /** Clock (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/** Default healthy streak: two checks in a row. */
export const HEALTHY_STREAK = 2;
/** The pace after a resume starts at 1 / 2^RAMP_STEPS and doubles at each healthy check. */
export const RAMP_STEPS = 3;
/** Defaults of the flap back-off (see ProbeGuard). */
export const MAX_HEALTHY_STREAK = 32;
export const FLAP_WINDOW = 10;

/**
 * Holds workers while any probe is unhealthy. `start()` reads the probes once before it returns,
 * so no item starts before the first check; then it checks every `checkEveryMs` until `close()`.
 */
export class ProbeGuard implements LiveGuard {
  private throttled = false;
  private current: ThrottleState = { throttled: false, probe: null, value: null, reason: null };
  private streak = 0;
  private required: number;
  private resumedAtCheck: number | null = null;
  /** The check from which the pace ramps up (the first check, then each resume). */
  private rampFrom = 1;
  private waiters = new Set<() => void>();
  private listeners = new Set<(s: ThrottleState) => void>();
  private readonly closer = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly now: () => number;
  readonly healthyStreak: number;
  readonly maxHealthyStreak: number;
  readonly flapWindow: number;
  /** Checks done, and the time each state began (for tests and the report). */
  checks = 0;
  since: number | null = null;

  constructor(private readonly runners: ProbeRunner[], private readonly opts: ProbeGuardOptions) {
    this.now = opts.now ?? Date.now;
    this.healthyStreak = Math.max(1, Math.floor(opts.healthyStreak ?? HEALTHY_STREAK));
    this.maxHealthyStreak = Math.max(this.healthyStreak, Math.floor(opts.maxHealthyStreak ?? MAX_HEALTHY_STREAK));
    this.flapWindow = Math.max(0, Math.floor(opts.flapWindow ?? FLAP_WINDOW));
    this.required = this.healthyStreak;
  }

  /** First check now; then one every `checkEveryMs` in the background. */
  async start(): Promise<void> {
    let next = this.now();
    await this.check();
    this.loop = (async () => {
      while (!this.closer.signal.aborted) {
        next += this.opts.checkEveryMs;
        // A check slower than the interval is followed at once by the next (never overlapping).
        const wait = Math.max(0, next - this.now());
        if (wait === 0) next = this.now();
        try { await sleep(wait, this.closer.signal); } catch { return; }
        await this.check();
      }
    })();
  }

  /** Reads every probe and acts on the readings. */
  async check(): Promise<ProbeReading[]> {
    const readings = await readProbes(this.runners);
    if (this.closer.signal.aborted) return readings;
    this.apply(readings);
    this.opts.onCheck?.(readings, this.state());
    return readings;
  }

  /**
   * The share of the rate this process may use now: 0 while throttled; after a resume (and at the
   * start) 1/8, doubling at each healthy check up to 1.
   */
  pace(): number {
    if (this.throttled) return 0;
    return Math.min(1, 2 ** (this.checks - this.rampFrom) / 2 ** RAMP_STEPS);
  }

  /** Consecutive healthy checks the next resume needs. */
  get requiredStreak(): number {
    return this.required;
  }

  /** The state machine: any unhealthy reading throttles at once; a healthy streak resumes. */
  apply(readings: ProbeReading[]): void {
    const checkNo = ++this.checks;
    const bad = readings.find((r) => !r.ok);
    if (bad) {
      this.streak = 0;
      const next: ThrottleState = { throttled: true, probe: bad.probe, value: bad.value, reason: bad.reason };
      const changed = !this.throttled || next.probe !== this.current.probe || next.value !== this.current.value || next.reason !== this.current.reason;
      if (!this.throttled) {
        this.since = this.now();
        const quick = this.resumedAtCheck !== null && checkNo - this.resumedAtCheck <= this.flapWindow;
        this.required = quick ? Math.min(this.required * 2, this.maxHealthyStreak) : this.healthyStreak;
      }
      this.throttled = true;
      this.current = next;
      if (changed) this.emit();
      return;
    }
    if (!this.throttled) return;
    this.streak++;
    if (this.streak < this.required) return;
    this.throttled = false;
    this.streak = 0;
    this.resumedAtCheck = checkNo;
    this.rampFrom = checkNo;
    this.since = this.now();
    this.current = { throttled: false, probe: null, value: null, reason: null };
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
    this.emit();
  }

  waitUntilHealthy(signal?: AbortSignal): Promise<void> {
    if (!this.throttled) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
      const done = (): void => { signal?.removeEventListener('abort', onAbort); resolve(); };
      const onAbort = (): void => { this.waiters.delete(done); reject(signal?.reason ?? new Error('aborted')); };
      this.waiters.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  state(): ThrottleState {
    return this.current;
  }

  subscribe(listener: (s: ThrottleState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closer.abort();
    await this.loop;
    for (const r of this.runners) await r.close().catch(() => undefined);
  }

  private emit(): void {
    const s = this.current;
    for (const l of [...this.listeners]) {
      try { l(s); } catch { /* a listener's bug must not stop the guard */ }
    }
  }
}
