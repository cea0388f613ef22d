/**
 * Every default of the plan language, in one place. The runbook prints the resolved values, so
 * a reviewer never has to know these.
 */
export const DEFAULTS = {
  processing: {
    /** @defaultValue 30000 */
    timeoutMs: 30_000,
    retries: { max: 2, backoffMs: 200 },
  },
  effect: {
    delivery: 'at-least-once',
    sqlIdempotent: true,
    httpMethod: 'POST',
    httpTimeoutMs: 10_000,
  },
  dedupe: { ttl: '30d' },
  rate: {
    itemsPerSecond: 100,
    concurrency: 1,
    chunkSize: 500,
    checkEvery: '5s',
    probeTimeoutMs: 2_000,
  },
  canary: { size: 100, pick: 'first' },
  abort: {
    maxErrorRate: 0.01,
    errorWindow: 1000,
    maxConsecutiveErrors: 20,
    stallAfter: '10m',
    onStall: 'alert',
  },
  approvals: { canary: 1, full: 1, reverse: 1 },
} as const;
