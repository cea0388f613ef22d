import { describe, expect, it } from 'vitest';
import { ErrorBudget } from '../../executor/monitor/error-budget.js';

const plan = { maxErrorRate: 0.01, errorWindow: 1000, maxConsecutiveErrors: 20 };

describe('ErrorBudget', () => {
  it('does not abort on a single early failure', () => {
    const b = new ErrorBudget(plan);
    expect(b.record(false, { itemKey: '1', message: 'boom' })).toBeNull();
    for (let i = 0; i < 50; i++) expect(b.record(true)).toBeNull();
    expect(b.snapshot()).toMatchObject({ items: 51, failures: 1, windowFailures: 1, consecutive: 0 });
  });

  it('aborts on the failure that exceeds maxErrorRate × errorWindow within the window', () => {
    const b = new ErrorBudget(plan);
    expect(b.allowedFailures).toBe(10);
    let trip = null;
    let n = 0;
    while (!trip) {
      n++;
      trip = b.record(n % 7 !== 0, { itemKey: String(n), message: `failed ${n}` }); // every 7th item fails
    }
    expect(n).toBe(77); // the 11th failure
    expect(trip).toMatchObject({ reason: 'error-rate', failuresInWindow: 11, windowItems: 77 });
    expect(trip.detail).toBe('11 of the last 77 items failed (14.3%); abort.maxErrorRate 0.01 over abort.errorWindow 1000 allows 10; last error: failed 77');
    // The first trip sticks.
    expect(b.record(true)).toBe(trip);
    expect(b.tripped).toBe(trip);
  });

  it('slides: failures older than the window no longer count', () => {
    const b = new ErrorBudget({ ...plan, errorWindow: 100, maxErrorRate: 0.05 });
    // 5 failures per 100 items, forever: exactly the budget, never over it.
    for (let i = 0; i < 10_000; i++) expect(b.record(i % 20 !== 0, { itemKey: String(i) })).toBeNull();
    expect(b.snapshot()).toMatchObject({ windowItems: 100, windowFailures: 5, failures: 500 });
    // The next failure replaces the oldest one in the window (item 9900); the one after is one too many.
    expect(b.record(false, { itemKey: 'x' })).toBeNull();
    expect(b.record(false, { itemKey: 'y' })?.reason).toBe('error-rate');
  });

  it('aborts on maxConsecutiveErrors failures in a row, before the rate budget is used', () => {
    const b = new ErrorBudget({ maxErrorRate: 0.5, errorWindow: 1000, maxConsecutiveErrors: 20 });
    for (let i = 1; i < 20; i++) expect(b.record(false, { itemKey: String(i), error: new Error('connection refused') })).toBeNull();
    const trip = b.record(false, { itemKey: '20', error: new Error('connection refused') });
    expect(trip).toMatchObject({ reason: 'consecutive-errors', consecutive: 20 });
    expect(trip?.detail).toBe('20 items failed in a row (abort.maxConsecutiveErrors is 20); last error: connection refused');
  });

  it('a success resets the consecutive count', () => {
    const b = new ErrorBudget({ maxErrorRate: 1, errorWindow: 10, maxConsecutiveErrors: 3 });
    for (let i = 0; i < 100; i++) expect(b.record(i % 3 === 2)).toBeNull(); // two failures, one success, ...
  });

  it('with a budget below one item, any failure aborts', () => {
    const b = new ErrorBudget({ maxErrorRate: 0, errorWindow: 1000, maxConsecutiveErrors: 0 });
    expect(b.record(true)).toBeNull();
    expect(b.record(false, { itemKey: 'k' })?.reason).toBe('error-rate');
  });

  it('keeps a bounded sample: the first and the most recent failures, in order', () => {
    const b = new ErrorBudget({ maxErrorRate: 1, errorWindow: 10, maxConsecutiveErrors: 0, maxSamples: 4, maxMessageLength: 10, now: () => 0 });
    for (let i = 1; i <= 9; i++) b.record(false, { itemKey: `k${i}`, attempt: 3, message: `message number ${i}` });
    const errors = b.errors();
    expect(errors.total).toBe(9);
    expect(errors.samples.map((s) => s.itemKey)).toEqual(['k1', 'k2', 'k8', 'k9']);
    expect(errors.samples[0]).toEqual({ itemKey: 'k1', attempt: 3, message: 'message n…', at: '1970-01-01T00:00:00.000Z' });
  });

  it('refuses a nonsensical configuration', () => {
    expect(() => new ErrorBudget({ ...plan, errorWindow: 0 })).toThrow(RangeError);
    expect(() => new ErrorBudget({ ...plan, maxErrorRate: Number.NaN })).toThrow(RangeError);
  });
});
