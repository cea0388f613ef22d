/**
 * In-process view of a run's control flag. Workers ask it whether to go on, pause or stop;
 * it is fed by polling the state store, PostgreSQL NOTIFY, a flag file for the embedded store,
 * and local signals (SIGINT/SIGTERM, the error budget, a fail-closed effect, stall-abort).
 */
import { sleep } from '../throttle/limiter.js';

export type StopReason = 'abort' | 'signal' | 'error-budget' | 'fail-closed' | 'stall' | 'store-unreachable' | 'lease-lost' | 'failed';

export class RunControl {
  private readonly stopper = new AbortController();
  private pausedFlag = false;
  private resumeWaiters: Array<() => void> = [];
  stopReason: { reason: StopReason; detail: string } | undefined;

  get stopSignal(): AbortSignal {
    return this.stopper.signal;
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  stop(reason: StopReason, detail: string): void {
    if (this.stopped) return;
    this.stopReason = { reason, detail };
    this.stopper.abort(new Error(`stopped: ${reason}: ${detail}`));
    this.resume();
  }

  pause(): void {
    this.pausedFlag = true;
  }

  resume(): void {
    this.pausedFlag = false;
    const w = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const r of w) r();
  }

  /** Resolves when not paused (at once if running); rejects when stopped. */
  async waitWhilePaused(): Promise<void> {
    while (this.pausedFlag && !this.stopped) {
      await Promise.race([new Promise<void>((r) => this.resumeWaiters.push(r)), sleep(1000, this.stopSignal).catch(() => undefined)]);
    }
  }
}
