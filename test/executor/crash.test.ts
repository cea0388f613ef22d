/**
 * Crash safety: a 20,000-item run is killed with SIGKILL at five seeded points (two at random
 * moments, three through failpoints: between an effect and its claim confirmation, just before
 * a chunk commit, inside the commit transaction) and resumed each time. A sink without unique
 * constraints then shows what was applied: nothing suppressed, nothing transactional twice,
 * at-most-once never twice, at-least-once re-delivered only where a kill left a claim
 * unconfirmed, every item processed, no committed chunk re-run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../executor/source/types.js';
import { checkInvariants, crashPlan, seedCrashDb, unconfirmedClaims } from '../support/crash.js';
import { startCli } from '../support/cli.js';
import { createTestDatabase, uniqueName } from '../support/db.js';

const N = 20_000;

describe('SIGKILL at seeded points, then resume', () => {
  it('loses nothing, applies nothing twice that must not be, suppresses everything', async () => {
    const db = await createTestDatabase('crash');
    await seedCrashDb(db.url, N);
    const ns = uniqueName('crash');
    const plan = crashPlan({ n: N, namespace: ns, chunkSize: 250, concurrency: 8 });
    const reports = mkdtempSync(join(tmpdir(), 'reprise-crash-reports-'));
    const env = { ...process.env, CRASH_DB_URL: db.url, REPRISE_LEASE_TTL_MS: '2000' };
    const random = seededRandom('reprise-crash-test-1');
    const kills: Array<{ failpoints?: string; afterMs?: number }> = [
      { afterMs: 200 + Math.floor(random() * 1500) },
      { failpoints: `after-effect=${100 + Math.floor(random() * 2000)}` },
      { failpoints: `before-commit=${2 + Math.floor(random() * 6)}` },
      { failpoints: `in-commit=${2 + Math.floor(random() * 6)}` },
      { afterMs: 200 + Math.floor(random() * 1500) },
    ];
    const unconfirmed = new Set<string>();
    const args = ['--json', 'run', plan.path, '--stage', 'full', '--reports', reports, '--workers', '2'];
    let killed = 0;
    let runId = '';
    for (const k of kills) {
      const cli = startCli(args, { ...env, REPRISE_FAILPOINTS: k.failpoints ?? '' });
      const started = await cli.waitFor((l) => l.includes('"type":"chunk"'), 120_000);
      if (k.afterMs !== undefined && started) {
        await new Promise((r) => setTimeout(r, k.afterMs));
        cli.child.kill('SIGKILL');
      }
      const res = await cli.done;
      const start = res.stdout.split('\n').find((l) => l.includes('"type":"start"'));
      if (start) runId = JSON.parse(start).run;
      if (res.signal === 'SIGKILL') killed++;
      for (const key of await unconfirmedClaims(db.url, ns)) unconfirmed.add(key);
    }
    const final = await startCli(args, env).done;
    expect(final.code, final.stderr).toBe(0);
    expect(killed).toBe(5);

    const inv = await checkInvariants(db.url, runId, N, unconfirmed);
    console.log(`crash test: ${killed} kills, ${unconfirmed.size} claims unconfirmed at a kill`, inv);
    expect(inv.itemsProcessed).toBe(N);
    expect(inv.itemsLost).toBe(0);
    expect(inv.outsideWindow).toBe(0);
    expect(inv.suppressApplied).toBe(0);
    expect(inv.transactionalDuplicates).toBe(0);
    expect(inv.amoDuplicates).toBe(0);
    expect(inv.amoLostWithoutUnconfirmedClaim).toBe(0);
    expect(inv.aloMissing).toBe(0);
    expect(inv.aloRedeliveredWithoutUnconfirmedClaim).toBe(0);
    expect(inv.committedChunksRerun).toBe(0);
    expect(inv.ledgerWithoutSink).toBe(0);
    expect(inv.sinkWithoutLedger).toBe(0);
    await db.drop();
  });
});
