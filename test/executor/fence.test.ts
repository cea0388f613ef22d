/**
 * Effects applied at once carry their lease as a fencing token: an http effect sends
 * `X-Reprise-Fence: <chunk>.<generation>`, a module effect gets `ctx.fence`. A target that keeps the highest generation per run and
 * chunk and refuses a lower one (docs/reliability.md, "Fencing at the target") refuses a call
 * from a worker whose lease was since taken over. Here the first run stops mid-chunk (its item 2
 * waits for the stop after its call), the second leases the chunk again with the next generation
 * and commits it; every request carries the generation of the lease it was made under, and a
 * request of the first lease, arriving now, is refused by such a target.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runStage } from '../../executor/stages/run.js';
import { handlerPlan, seedCrashDb } from '../support/crash.js';
import { createTestDatabase, withClient } from '../support/db.js';
import { startHttpServer, type RecordedRequest } from '../support/http.js';

describe('the fencing token of effects applied at once', () => {
  it('is the chunk and its lease generation; a target keeping the highest per chunk refuses the stale lease', async () => {
    const n = 4;
    const db = await createTestDatabase('fence');
    await seedCrashDb(db.url, n);
    const server = await startHttpServer();
    // The target's fencing: the highest generation seen per run and chunk; a lower one is refused.
    const highest = new Map<string, number>();
    const accepted: RecordedRequest[] = [];
    const refused: RecordedRequest[] = [];
    server.respond = (req, res) => {
      const [chunk, generation] = String(req.headers['x-reprise-fence']).split('.').map(Number) as [number, number];
      const k = `${String(req.headers['x-reprise-run'])}/${chunk}`;
      if (generation < (highest.get(k) ?? 0)) {
        refused.push(req);
        res.writeHead(409).end();
        return;
      }
      highest.set(k, generation);
      accepted.push(req);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    };
    const dir = mkdtempSync(join(tmpdir(), 'reprise-fence-'));
    const marker = join(dir, 'first');
    const moduleLog = join(dir, 'module.log');
    const plan = handlerPlan({
      name: 'fence', n, env: 'FENCE_DB_URL', timeoutMs: 30_000, concurrency: 1, chunkSize: n,
      sideEffects: [
        { name: 'notify', kind: 'http', method: 'POST', url: { env: 'FENCE_URL' }, args: ['id'], backfill: 'replay', live: 'apply' },
        { name: 'record', kind: 'module', module: './record.ts', export: 'record', args: ['id'], backfill: 'replay', live: 'apply' },
      ],
      handler: [
        "import { existsSync, writeFileSync } from 'node:fs';",
        "import { defineHandler } from 'reprise';",
        "export default defineHandler<{ id: string }, 'notify' | 'record'>(async (row, ctx) => {",
        '  await ctx.effects.notify({ id: row.id });',
        '  await ctx.effects.record({ id: row.id });',
        `  if (row.id === '2' && !existsSync(${JSON.stringify(marker)})) {`,
        '    // The first run stops here: its chunk is given back and leased again by the next.',
        `    writeFileSync(${JSON.stringify(marker)}, '');`,
        "    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));",
        '    throw ctx.signal.reason;',
        '  }',
        '});',
        '',
      ].join('\n'),
      files: {
        'record.ts': [
          "import { appendFileSync } from 'node:fs';",
          'export async function record(args: { id: string }, ctx: { fence?: { chunk: number; generation: number } }): Promise<void> {',
          `  appendFileSync(${JSON.stringify(moduleLog)}, \`\${args.id}@\${ctx.fence?.chunk}.\${ctx.fence?.generation}\\n\`);`,
          '}',
          '',
        ].join('\n'),
      },
    });
    const env = { ...process.env, FENCE_DB_URL: db.url, FENCE_URL: `${server.url}/hook` };
    const reportsDir = mkdtempSync(join(tmpdir(), 'reprise-reports-'));

    const stop = new AbortController();
    const watch = setInterval(() => { if (existsSync(marker)) stop.abort(); }, 20);
    const first = await runStage({ plan: plan.path, stage: 'full', stateUrl: 'unused://', env, reportsDir, signal: stop.signal });
    clearInterval(watch);
    expect(first.outcome).toBe('stopped');
    const firstRequests = accepted.length;
    expect(firstRequests).toBe(2); // items 1 and 2, under the first lease

    const second = await runStage({ plan: plan.path, stage: 'full', stateUrl: 'unused://', env, reportsDir });
    expect(second.report!.counts.processed).toBe(n);
    const chunk = (await withClient(db.url, (c) => c.query('select seq, generation, state from reprise.chunks where run_id = $1', [second.runId]))).rows;
    expect(chunk).toEqual([{ seq: 0, generation: 2, state: 'committed' }]);

    const fences = accepted.map((r) => `${String((r.json as { id: string }).id)}@${String(r.headers['x-reprise-fence'])}`);
    expect(fences).toEqual(['1@0.1', '2@0.1', '1@0.2', '2@0.2', '3@0.2', '4@0.2']);
    expect(refused).toEqual([]);
    // A module effect gets the same token as ctx.fence (item 2's first call ran before its stop).
    expect(readFileSync(moduleLog, 'utf8').trim().split('\n')).toEqual(['1@0.1', '2@0.1', '1@0.2', '2@0.2', '3@0.2', '4@0.2']);

    // The first lease's call to item 2, landing only now (its process had been frozen): refused.
    const stale = accepted[1]!;
    const late = await fetch(`${server.url}/hook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-reprise-run': String(stale.headers['x-reprise-run']), 'x-reprise-fence': String(stale.headers['x-reprise-fence']), 'idempotency-key': String(stale.headers['idempotency-key']) },
      body: stale.body,
    });
    expect(late.status).toBe(409);
    expect(refused).toHaveLength(1);

    await server.close();
    await db.drop();
  });
});
