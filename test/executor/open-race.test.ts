/**
 * Several processes starting the same manifest at the same moment all join one run: none of
 * them fails on the second unique index of `runs` (manifest_hash) when it loses the insert race.
 * Found by the chaos short run in CI (two workers started together, one exited 1 on
 * `runs_manifest_hash_key`).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.js';
import { fsPlanSource } from '../../compiler/source.js';
import { runIdOf } from '../../compiler/manifest.js';
import { StateStore } from '../../executor/store/store.js';
import { crashPlan } from '../support/crash.js';
import { createTestDatabase } from '../support/db.js';

describe('opening a run concurrently', () => {
  it('every store racing to create the same run gets that run; none fails', async () => {
    const tdb = await createTestDatabase('openrace');
    const stores = await Promise.all(Array.from({ length: 6 }, () => StateStore.open(tdb.url)));
    try {
      const { manifest } = await compileSource(fsPlanSource(crashPlan({ n: 100, namespace: 'openrace', dedupeStore: 'postgres' }).path));
      const rounds = 40;
      let failures = 0;
      for (let round = 0; round < rounds; round++) {
        // A manifest of its own per round, so each round races on a fresh insert.
        const hash = `sha256:${createHash('sha256').update(`${manifest.hash}:${round}`).digest('hex')}`;
        const m = { ...manifest, hash };
        const runId = runIdOf(m);
        const outcomes = await Promise.allSettled(stores.map((s) => s.ensureRun(runId, m)));
        for (const o of outcomes) {
          if (o.status === 'rejected') failures++;
          else expect(o.value.manifest_hash).toBe(hash);
        }
      }
      expect(failures).toBe(0);
      expect((await stores[0]!.listRuns()).length).toBe(rounds);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    await tdb.drop();
  });
});
