/**
 * The chaos harness's short run, in CI: 22 trials of the crash scenario on dedicated PostgreSQL
 * and Redis servers, every fault kind injected at least once (a kind whose planned faults all
 * missed — the run ended first — gets trials of its own), each run resumed to completion, and
 * every invariant total zero except at-least-once re-deliveries and at-most-once effects left
 * unsent, each of which must be explained by a claim a fault left unconfirmed.
 * The long run for the docs: `npm run chaos -- --trials 200 --seed <S>` (docs/reliability.md).
 */
import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, MUST_BE_ZERO, formatSummary, formatTrial, planTrials, runTrial, startChaosServers, summarize, type TrialResult } from './harness.js';

const TRIALS = 22;
const SEED = 'ci-short';

describe('chaos: faults at seeded moments, resumed to completion', () => {
  it(`${TRIALS} trials covering every fault kind: nothing lost, nothing applied twice that must not be, nothing suppressed applied`, async () => {
    const servers = await startChaosServers();
    const results: TrialResult[] = [];
    try {
      for (const cfg of planTrials(TRIALS, SEED)) {
        const res = await runTrial(servers, cfg);
        results.push(res);
        console.log(formatTrial(res));
        for (const note of res.notes) console.log(`trial ${res.config.index}: ${note}`);
      }
      for (const kind of FAULT_KINDS) {
        for (let extra = 0; extra < 3 && !summarize(results).injected[kind]; extra++) {
          const [cfg] = planTrials(1, `${SEED}:${kind}:${extra}`, { faults: [kind] });
          const res = await runTrial(servers, { ...cfg!, index: results.length });
          results.push(res);
          console.log(formatTrial(res));
        }
      }
    } finally {
      await servers.destroy();
    }
    const summary = summarize(results);
    console.log(formatSummary(summary, SEED));
    for (const r of results) expect(r.error, `trial ${r.config.index}`).toBeUndefined();
    for (const kind of FAULT_KINDS) expect(summary.injected[kind], `fault ${kind} injected`).toBeGreaterThan(0);
    for (const k of MUST_BE_ZERO) expect(summary.totals[k], k).toBe(0);
    expect(summary.totals.itemsProcessed).toBe(summary.totals.items);
    expect(summary.failedTrials, results.filter((r) => r.violations.length).map((r) => `trial ${r.config.index}: ${r.violations.join(', ')}`).join('; ')).toBe(0);
  }, 1_200_000);
});
