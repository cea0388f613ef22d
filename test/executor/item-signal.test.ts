/**
 * `ctx.signal` aborts at the item's timeout, whenever the handler reads it: the worker makes an
 * attempt's AbortSignal only when asked for, so a handler that reads it before the timeout sees
 * it abort, and one that reads it after the timeout finds it aborted already. Either way the
 * item fails with the timeout and the run goes on.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runStage } from '../../executor/stages/run.js';
import { handlerPlan, seedCrashDb } from '../support/crash.js';
import { createTestDatabase } from '../support/db.js';

describe('the handler\'s ctx.signal', () => {
  it('aborts at the item timeout whether read before or after it; the items fail with the timeout', async () => {
    const n = 12;
    const db = await createTestDatabase('item_signal');
    await seedCrashDb(db.url, n);
    const log = join(mkdtempSync(join(tmpdir(), 'reprise-signal-')), 'log');
    const plan = handlerPlan({
      name: 'item-signal', n, env: 'SIGNAL_DB_URL', timeoutMs: 150, concurrency: 4, chunkSize: 6,
      handler: [
        "import { appendFileSync } from 'node:fs';",
        "import { defineHandler } from 'reprise';",
        `const note = (line: string) => appendFileSync(${JSON.stringify(log)}, \`\${line}\\n\`);`,
        "export default defineHandler<{ id: string }, 'write'>(async (row, ctx) => {",
        '  const id = Number(row.id);',
        '  if (id % 3 === 0) { await ctx.effects.write({ id: row.id }); return; }',
        '  if (id % 3 === 1) {',
        '    // Reads the signal at once and waits for it.',
        '    const signal = ctx.signal;',
        "    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));",
        '    note(`early ${row.id} ${String(signal.reason?.message ?? signal.reason)}`);',
        '    return;',
        '  }',
        '  // Reads the signal only after the timeout.',
        '  await new Promise((r) => setTimeout(r, 400));',
        '  note(`late ${row.id} ${ctx.signal.aborted} ${String(ctx.signal.reason?.message ?? ctx.signal.reason)}`);',
        '});',
        '',
      ].join('\n'),
    });
    const out = await runStage({
      plan: plan.path, stage: 'full', stateUrl: 'unused://',
      env: { ...process.env, SIGNAL_DB_URL: db.url },
      reportsDir: mkdtempSync(join(tmpdir(), 'reprise-reports-')),
    });
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const failing = ids.filter((i) => i % 3 !== 0);
    expect(out.report!.counts.processed).toBe(n);
    expect(out.report!.counts.failed).toBe(failing.length);
    // The handlers that read the signal late finish after their item gave up: wait for their lines.
    await new Promise((r) => setTimeout(r, 600));
    const lines = readFileSync(log, 'utf8').trim().split('\n').sort();
    expect(lines).toEqual([
      ...ids.filter((i) => i % 3 === 1).map((i) => `early ${i} timed out after 150 ms`),
      ...ids.filter((i) => i % 3 === 2).map((i) => `late ${i} true timed out after 150 ms`),
    ].sort());
    await db.drop();
  });
});
