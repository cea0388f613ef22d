/**
 * Rate and live-health gates every worker passes before starting items.
 *
 * A RateLimiter hands out tokens per batch of items (not per item), shared by every worker of a
 * run; a LiveGuard holds workers at zero while a protect probe says live traffic suffers.
 */

export interface RateLimiter {
  /** Resolves when `n` items may start; rejects when `signal` aborts. */
  acquire(n: number, signal?: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}

export interface ThrottleState {
  throttled: boolean;
  probe: string | null;
  value: number | null;
  reason: string | null;
}

export interface LiveGuard {
  /** Resolves at once while healthy; otherwise when healthy again (or rejects on abort). */
  waitUntilHealthy(signal?: AbortSignal): Promise<void>;
  state(): ThrottleState;
  /**
   * Calls `listener` on every change of state (throttled, resumed, another probe or value while
   * throttled), synchronously at the change. Returns the unsubscribe function.
   */
  subscribe?(listener: (state: ThrottleState) => void): () => void;
  close?(): Promise<void>;
}

export const alwaysHealthy: LiveGuard = {
  waitUntilHealthy: async () => undefined,
  state: () => ({ throttled: false, probe: null, value: null, reason: null }),
};

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal?.reason ?? new Error('aborted')); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A token bucket local to this process: `ratePerSecond` tokens per second, holding at most
 * `capacity` (one second's worth by default). Used when no shared bucket is configured.
 */
export class LocalTokenBucket implements RateLimiter {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly ratePerSecond: number, private readonly capacity = Math.max(1, ratePerSecond)) {
    this.tokens = 0;
  }

  acquire(n: number, signal?: AbortSignal): Promise<void> {
    const run = async (): Promise<void> => {
      for (;;) {
        const now = performance.now();
        this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
        this.last = now;
        if (this.tokens >= n || (this.tokens >= 0 && n > this.capacity)) {
          this.tokens -= n;
          return;
        }
        await sleep(Math.max(1, ((n - this.tokens) / this.ratePerSecond) * 1000), signal);
      }
    };
    const p = this.queue.then(run);
    this.queue = p.catch(() => undefined);
    return p;
  }
}
