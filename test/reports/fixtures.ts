/** Sample reports for the report tests: realistic numbers, and hostile strings where data goes. */
import { finalizeReport, type Report, type ReportBody } from '../../executor/reports/report.js';
import { previewDiff } from '../../executor/reports/preview-diff.js';

export const HOSTILE_KEY = `<script>alert("k")</script>|\`x\`*y*[l](https://evil.example/a.png)`;
export const HOSTILE_MESSAGE = `boom <img src="https://evil.example/pixel.gif" onerror="alert(1)"> & "quotes" 'single' | pipe\nsecond line`;

export function canaryBody(over: Partial<ReportBody> = {}): ReportBody {
  const before = [{ order_id: 42, total_cents: 1999, tax_cents: 199 }];
  const after = [{ order_id: 42, total_cents: 2000, tax_cents: 200 }];
  return {
    kind: 'reprise/report@1',
    runId: 'orders-tax-recompute.r1.0123abcd',
    plan: 'orders-tax-recompute',
    revision: 1,
    manifest: `sha256:${'0123abcd'.repeat(8)}`,
    stage: 'canary',
    outcome: 'completed',
    startedAt: '2026-11-13T09:00:00.000Z',
    finishedAt: '2026-11-13T09:01:05.500Z',
    durationMs: 65_500,
    count: { value: 48_213, expect: { min: 40_000, max: 60_000 }, countedAt: '2026-11-13T08:59:58.000Z' },
    counts: { selected: 100, processed: 100, succeeded: 97, failed: 3, skippedOutsideWindow: 0, remaining: 0 },
    effects: [
      { name: 'write_invoice', kind: 'sql', policy: 'replay', delivery: null, live: 'apply', counts: { applied: 97, suppressed: 0, 'skipped-dup': 0, claimed: 0, failed: 3, captured: 0, reversed: 0 } },
      { name: 'email_customer', kind: 'http', policy: 'suppress', delivery: null, live: 'apply', counts: { applied: 0, suppressed: 97, 'skipped-dup': 0, claimed: 0, failed: 0, captured: 0, reversed: 0 } },
      { name: 'publish_invoice_corrected', kind: 'redis-stream', policy: 'dedupe', delivery: 'at-least-once', live: 'dedupe', counts: { applied: 80, suppressed: 0, 'skipped-dup': 17, claimed: 0, failed: 0, captured: 0, reversed: 0 } },
    ],
    errors: {
      total: 3,
      samples: [
        { itemKey: '1017', attempt: 4, message: 'duplicate key value violates unique constraint "invoices_pkey"', at: '2026-11-13T09:00:12.000Z' },
        { itemKey: HOSTILE_KEY, attempt: 1, message: HOSTILE_MESSAGE, at: '2026-11-13T09:00:40.000Z' },
      ],
    },
    throttle: {
      throttledMs: 9_000,
      episodes: [{ probe: 'replica-lag', value: 7.2, max: 5, from: '2026-11-13T09:00:20.000Z', to: '2026-11-13T09:00:29.000Z' }],
    },
    throughput: Array.from({ length: 66 }, (_, t) => ({ t, items: t >= 20 && t < 29 ? 0 : (t * 7) % 5 })),
    validations: [
      { name: 'canary-totals-consistent', ok: true, detail: 'ok = true' },
      { name: 'no-negative-tax', ok: false, detail: `2 rows: ${HOSTILE_MESSAGE}` },
    ],
    fingerprints: {
      orders: { kind: 'postgres', systemIdentifier: '7301234567890123456', database: 'orders' },
      events: { kind: 'redis', runId: 'f1e2d3c4b5a697887766554433221100ffeeddcc' },
    },
    canary: { size: 100, pick: 'first', keys: ['1001', '1002', '1003', HOSTILE_KEY] },
    preview: [{ effect: 'write_invoice', itemKey: HOSTILE_KEY, args: { order_id: 42, total_cents: 2000, tax_cents: 200, note: '</pre><script>x()</script>' }, before, after, diff: previewDiff(before, after) }],
    abort: null,
    workers: 2,
    ...over,
  };
}

export function canaryReport(over: Partial<ReportBody> = {}): Report {
  return finalizeReport(canaryBody(over));
}
