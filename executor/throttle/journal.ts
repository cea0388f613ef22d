/**
 * What the state store says about a run's throttling, kept by every process's live guard:
 *
 * - `runs.status = 'throttled'` and `runs.throttle = {probe, value, max, reason, since, seen, by}`
 *   while any process of the run is held by a probe (`since`: the database's clock when the
 *   episode began; `seen`: when a process last confirmed it);
 * - one `throttled` and one `resumed` row in `reprise.events` per episode (whichever process
 *   opens or closes it writes them: the updates are conditional, so several processes reading
 *   the same probes make one episode, not several);
 * - `runs.throttled_ms`, increased when an episode closes by its length on the database's clock.
 *   A process that dies throttled leaves the episode open; the next process that finds the probes
 *   healthy closes it, counting it only up to one check interval after it was last confirmed.
 *
 * The guard's in-memory state is what holds the workers; these writes only report it, so a
 * failed write is retried at the next check and never blocks or releases anything.
 */
import type { Database } from '../db/database.js';
import type { StateStore } from '../store/store.js';
import type { ThrottleState } from './limiter.js';

export interface JournalOptions {
  store: StateStore;
  runId: string;
  stage: string;
  /** This process (`host:pid:random`), for the events' actor and `throttle.by`. */
  owner: string;
  /** The probes' limits by name. */
  maxOf(probe: string): number | null;
  checkEveryMs: number;
  onError?(e: Error): void;
}

/** The SQL of the journal, in one place. */
const OPEN_SQL = `
with prev as (select throttle from reprise.runs where id = $1 for update)
update reprise.runs r
   set throttle = jsonb_build_object('probe', $2::text, 'value', $3::float8, 'max', $4::float8, 'reason', $5::text,
                                     'since', coalesce(prev.throttle->'since', to_jsonb(now())), 'seen', to_jsonb(now()), 'by', $6::text),
       status = case when r.status in ('running', 'pending') then 'throttled' else r.status end,
       updated_at = now()
  from prev
 where r.id = $1
returning prev.throttle is null as opened, r.throttle->>'since' as since`;

const CLOSE_SQL = `
with prev as (select throttle from reprise.runs where id = $1 and throttle is not null for update),
     span as (
       select greatest(0, round(extract(epoch from (
                least(now(), coalesce((prev.throttle->>'seen')::timestamptz, now()) + $2::int * interval '1 millisecond')
                - (prev.throttle->>'since')::timestamptz)) * 1000))::bigint as ms,
              prev.throttle as throttle
         from prev)
update reprise.runs r
   set throttled_ms = r.throttled_ms + span.ms,
       throttle = null,
       status = case when r.status = 'throttled' then 'running' else r.status end,
       updated_at = now()
  from span
 where r.id = $1
returning span.ms as ms, span.throttle as throttle`;

export class ThrottleJournal {
  /** Whether this process believes the run's row shows its throttle. */
  private shown = false;
  private chain: Promise<void> = Promise.resolve();
  private episodeMax: number | null = null;

  constructor(private readonly opts: JournalOptions) {}

  /** Records the guard's state (call on every check and every change); writes are queued in order. */
  record(s: ThrottleState, at: number = Date.now()): Promise<void> {
    const job = this.chain.then(() => (s.throttled ? this.throttled(s, at) : this.healthy()));
    this.chain = job.catch((e: unknown) => this.opts.onError?.(e as Error));
    return this.chain;
  }

  /** Closes this process's open episode (the stage is ending). */
  close(): Promise<void> {
    return this.record({ throttled: false, probe: null, value: null, reason: null });
  }

  private get db(): Database {
    return this.opts.store.db;
  }

  private async throttled(s: ThrottleState, at: number): Promise<void> {
    const probe = s.probe ?? 'unknown';
    const max = this.opts.maxOf(probe);
    if (s.value !== null) this.episodeMax = Math.max(this.episodeMax ?? s.value, s.value);
    await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ opened: boolean }>(OPEN_SQL, [this.opts.runId, probe, s.value, max, s.reason, this.opts.owner]);
      if (rows[0]?.opened) {
        await this.opts.store.recordEvent(this.opts.runId, this.opts.owner, 'throttled', {
          stage: this.opts.stage, probe, value: s.value, max, reason: s.reason, at: new Date(at).toISOString(),
        }, tx);
      }
    });
    this.shown = true;
  }

  private async healthy(): Promise<void> {
    if (!this.shown) return;
    await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ ms: string | number; throttle: { probe?: string } | null }>(CLOSE_SQL, [this.opts.runId, Math.round(this.opts.checkEveryMs)]);
      if (rows[0]) {
        await this.opts.store.recordEvent(this.opts.runId, this.opts.owner, 'resumed', {
          stage: this.opts.stage, probe: rows[0].throttle?.probe ?? null, maxValue: this.episodeMax, throttledMs: Number(rows[0].ms),
        }, tx);
      }
    });
    this.shown = false;
    this.episodeMax = null;
  }

  /**
   * At start: an episode left open by a process that died throttled is closed once this
   * process's first check is healthy (the live ones re-open it at their next check if they still
   * see a probe unhealthy).
   */
  adoptLeftover(): void {
    this.shown = true;
  }
}
