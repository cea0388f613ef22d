/**
 * The fencing token, alone: a worker whose lease expired and was taken over cannot commit its
 * chunk — not its deferred effects, not its ledger rows, not its checkpoint — whatever it
 * computed meanwhile; the worker holding the newer generation commits exactly once. Counted in a
 * sink table without a unique constraint.
 */
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.js';
import { fsPlanSource } from '../../compiler/source.js';
import { parseNamedSql } from '../../compiler/sql-params.js';
import { openDatabase } from '../../executor/db/database.js';
import type { Applier } from '../../executor/effects/appliers.js';
import { SqlBatcher } from '../../executor/effects/batch.js';
import { commitChunk, type ItemResult } from '../../executor/stages/commit.js';
import { StateStore, type ChunkRow } from '../../executor/store/store.js';
import { crashPlan } from '../support/crash.js';
import { createTestDatabase } from '../support/db.js';

describe('fencing at commit', () => {
  it('refuses the stale worker\'s commit after a takeover; the new lease holder commits once', async () => {
    const tdb = await createTestDatabase('fencing');
    const db = await openDatabase(tdb.url, { max: 4 });
    try {
      const store = await StateStore.on(db);
      await db.query('create table sink (id bigint not null, by text not null)');
      const { manifest, runId, plan } = await compileSource(fsPlanSource(crashPlan({ n: 100, namespace: 'fencing', dedupeStore: 'postgres' }).path));
      await store.ensureRun(runId, manifest);
      await store.insertChunks(runId, 'full', 0, [{ lo: null, hi: null, keys: null, items: 10 }]);
      await store.updateRun(runId, { stage: 'full', status: 'running', total_items: 10, chunks_total: 1, planned_at: new Date() });

      const applier: Applier = {
        effect: plan.sideEffects[0]!,
        needsBefore: false,
        sql: { statement: parseNamedSql('insert into sink (id, by) values (:id, :by)'), preview: undefined },
        apply: async () => { throw new Error('deferred effects are applied by the commit'); },
      };
      const results = (by: string): ItemResult[] =>
        Array.from({ length: 10 }, (_, i) => ({
          item: { key: String(i + 1), row: { id: i + 1 } },
          ok: true,
          attempts: 1,
          calls: [{
            entry: { item_key: String(i + 1), effect: 'write_result', call_index: 0, policy: 'replay', status: 'applied', dedupe_key: null, payload: { id: i + 1, by }, before: null, error: null },
            deferred: { applier, args: { id: i + 1, by } },
          }],
        }));
      const commit = (chunk: ChunkRow, owner: string) =>
        commitChunk({ store, runId, stage: 'full', chunk, owner, results: results(owner), dedupe: undefined, dedupeInStateDb: false, batcher: new SqlBatcher(), ordered: false });

      const a = (await store.leaseChunk(runId, 'full', 'worker-a', 60_000))!;
      // Worker A freezes; its lease runs out and worker B takes the chunk over.
      await db.query(`update reprise.chunks set lease_expires_at = now() - interval '1 second' where run_id = $1`, [runId]);
      const b = (await store.leaseChunk(runId, 'full', 'worker-b', 60_000))!;
      expect(b.seq).toBe(a.seq);
      expect(b.generation).toBe(a.generation + 1);

      // A wakes up and commits what it computed: fenced, nothing of it lands.
      expect(await commit(a, 'worker-a')).toEqual({ committed: false, reason: 'fenced' });
      const after = async () => (await db.query<{ sink: number; ledger: number; state: string; owner: string | null }>(
        `select (select count(*)::int from sink) as sink,
                (select count(*)::int from reprise.ledger where run_id = $1) as ledger,
                c.state, c.lease_owner as owner
           from reprise.chunks c where c.run_id = $1`, [runId])).rows[0]!;
      expect(await after()).toEqual({ sink: 0, ledger: 0, state: 'leased', owner: 'worker-b' });

      // B commits: every effect once, by B.
      expect(await commit(b, 'worker-b')).toEqual({ committed: true, items: 10, failed: 0 });
      expect(await after()).toEqual({ sink: 10, ledger: 10, state: 'committed', owner: null });
      expect((await db.query('select distinct by from sink')).rows).toEqual([{ by: 'worker-b' }]);

      // A retrying later, or B committing twice, changes nothing: a committed chunk is final.
      expect(await commit(a, 'worker-a')).toEqual({ committed: false, reason: 'fenced' });
      expect(await commit(b, 'worker-b')).toEqual({ committed: false, reason: 'fenced' });
      expect((await db.query<{ n: number }>('select count(*)::int as n from sink')).rows[0]!.n).toBe(10);
      expect((await store.getRun(runId))!.items_done).toBe(10);
    } finally {
      await db.close();
    }
    await tdb.drop();
  });
});
