/**
 * The report's `throttle` section as the state store knows it: every episode any process of the
 * run journaled (journal.ts) since the stage started, and their total (`runs.throttled_ms` is the
 * whole run's, canary included). The stage monitor
 * may replace the episodes with those it watched itself (executor/monitor/stage-monitor.ts);
 * this is the base that holds when the report is written by a process that saw none.
 */
import type { ReportThrottle } from '../../schema/report.types.js';
import { ThrottleRecorder } from '../reports/throughput.js';
import type { StateStore } from '../store/store.js';

interface EventRow {
  at: Date;
  action: string;
  detail: { stage?: string; probe?: string | null; value?: number | null; max?: number | null };
}

/** Episodes of `stage` journaled since `since`, and their total length (the database's clock). */
export async function throttleSection(store: StateStore, runId: string, stage: string, since: Date): Promise<ReportThrottle> {
  const { rows } = await store.db.query<EventRow>(
    `select at, action, detail from reprise.events
      where run_id = $1 and action in ('throttled', 'resumed') and at >= $2 and detail->>'stage' = $3
      order by id`,
    [runId, since, stage],
  );
  const rec = new ThrottleRecorder({ maxEpisodes: 50 });
  for (const r of rows) {
    const at = new Date(r.at).getTime();
    if (r.action === 'throttled') {
      const max = r.detail.max ?? 0;
      // A probe that failed has no value: the episode shows its limit (as the stage monitor does).
      rec.throttled(r.detail.probe ?? 'unknown', r.detail.value ?? max, max, at);
    } else {
      rec.clear(at);
    }
  }
  return rec.toJSON();
}
