/** The runbook: what a reviewer reads before approving, rendered from the manifest alone. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.js';
import { readMigrations, renderRunbook } from '../../compiler/runbook.js';
import { fsPlanSource } from '../../compiler/source.js';
import { root } from './helpers.js';

const example = (name: string) => compileSource(fsPlanSource(join(root, 'plans', 'examples', `${name}.yaml`)));

describe('runbook', () => {
  it('is deterministic: the same manifest renders the same bytes, wherever it was compiled', async () => {
    const a = await example('orders-tax-recompute');
    const b = await compileSource(fsPlanSource(join('plans', 'examples', 'orders-tax-recompute.yaml')));
    expect(renderRunbook(b)).toBe(renderRunbook(a));
    expect(renderRunbook(a)).not.toMatch(/\b20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(?!\.000Z)/); // no clock time other than plan timestamps
    expect(renderRunbook(a)).not.toContain(root);
  });

  it('has the header a reviewer checks', async () => {
    const c = await example('orders-tax-recompute');
    const md = renderRunbook(c);
    expect(md.startsWith('# Runbook: orders-tax-recompute r1\n')).toBe(true);
    for (const s of ['payments-platform', 'alice@example.com', 'INC-4821', 'Tax rounding bug', c.hash, c.runId, 'reprise 0.1.0', c.manifest.files.handler.sha256, c.manifest.files.plan.sha256]) {
      expect(md).toContain(s);
    }
  });

  it('prints the run plan: scope, window, count guard, rate with headroom left to live, chunks, ordering, canary, thresholds, approvals', async () => {
    const md = renderRunbook(await example('orders-tax-recompute'));
    expect(md).toContain('`[2026-10-01T00:00:00.000Z, 2026-11-12T00:00:00.000Z)` (42d');
    expect(md).toContain('between 40,000 and 60,000 items');
    expect(md).toContain('| Headroom left to live | 600 items/s (capacity 2,000 − live 1,200 − backfill 200) |');
    expect(md).toContain('at most 120 chunks at expect.max');
    expect(md).toContain('| Concurrency | 4 items in flight per worker |');
    expect(md).toContain('| Max connections | 4 per worker process');
    expect(md).toContain('timeout 5s; 3 retries after the first attempt, backoff 200ms doubling');
    expect(md).toContain('`replica-lag`');
    expect(md).toContain('checked every 2s');
    expect(md).toContain('`canary-totals-consistent`');
    expect(md).toContain('No committed progress for 5m');
    expect(md).toMatch(/\| `full` \| 2 \|/);
    expect(md).toContain('`none`: items run in any order');
  });

  it('describes a JSONL source and a partitioned ordering', async () => {
    const md = renderRunbook(await example('webhook-redelivery'));
    expect(md).toContain('the JSONL file `./webhook-redelivery.dead-letters.jsonl`');
    expect(md).toContain('field `occurred_at`; events outside the window are skipped');
    expect(md).toContain('items sharing a `subscription_id` run one at a time in key order');
    expect(md).toContain('Headroom left to live | unknown');
  });

  it('has the side-effect table and one plain-English account per effect', async () => {
    const md = renderRunbook(await example('orders-tax-recompute'));
    expect(md).toContain('| effect | kind | target | backfill | live | dedupe key | delivery | reversal |');
    expect(md).toContain('| `publish_invoice_corrected` | redis-stream | XADD `invoice-events` on `events` (env `EVENTS_REDIS_URL`) | **dedupe** | dedupe | `invoice-corrected:{order_id}` | at-least-once | declared |');
    expect(md).toMatch(/`write_invoice` — .*\*\*Executed for real on every call\.\*\*.*commits together with the checkpoint/);
    expect(md).toMatch(/`email_customer` — .*\*\*Never sent during the backfill: each call is only recorded in the ledger\.\*\*/);
    expect(md).toMatch(/`publish_invoice_corrected` — .*\*\*Published at most once per key `invoice-corrected:\{order_id\}`, across this backfill and the live path\.\*\*/);
  });

  it('explains a dedupe effect kept apart from live by the live boundary, with at-most-once delivery', async () => {
    const md = renderRunbook(await example('notifications-redrive'));
    expect(md).toContain('The request carries the key in its `Idempotency-Key` header.');
    expect(md).toContain('Delivery `at-most-once`: a claim left unconfirmed by a crash is never tried again');
    expect(md).toContain('only for items from the cutoff `2026-11-03T18:00:00.000Z` on');
  });

  it('embeds the DDL of every state-store migration, in order, and says where the tables live', async () => {
    const migrations = readdirSync(join(root, 'executor', 'store', 'migrations')).filter((f) => f.endsWith('.sql')).sort();
    expect(migrations.length).toBeGreaterThan(0);
    expect(readMigrations().map((m) => m.file)).toEqual(migrations);
    const md = renderRunbook(await example('orders-tax-recompute'));
    let last = -1;
    for (const file of migrations) {
      const sql = readFileSync(join(root, 'executor', 'store', 'migrations', file), 'utf8').trimEnd();
      const at = md.indexOf(sql);
      expect(at, file).toBeGreaterThan(last);
      last = at;
    }
    expect(md).toContain('database schema `reprise` of `orders` (env `ORDERS_DATABASE_URL`), the `checkpoint.connection`');
    expect(renderRunbook(await example('notifications-redrive'))).toContain('database schema `reprise` of the `--state` store');
  });

  it('renders given migrations (the renderer reads them as data)', async () => {
    const md = renderRunbook(await example('webhook-redelivery'), { migrations: [{ file: '000001_x.sql', sql: 'create table reprise.x ();' }] });
    expect(md).toContain('#### `000001_x.sql`\n\n```sql\ncreate table reprise.x ();\n```');
  });

  it('has the go/no-go checklist and the abort checklist', async () => {
    const c = await example('orders-tax-recompute');
    const md = renderRunbook(c);
    const go = md.slice(md.indexOf('## 4. Go / no-go checklist'), md.indexOf('## 5.'));
    for (const item of ['**Approvals**', '**Count guard**', '**Fingerprints match the dry-run**', '**Dedupe store reachable**', '**Live watermark past the cutoff**', '**Kill switch**', '**Probes healthy**', '**On-call named**']) {
      expect(go).toContain(`- [ ] ${item}`);
    }
    const abort = md.slice(md.indexOf('## 5. Abort checklist'), md.indexOf('## 6.'));
    expect(abort).toContain(`\`reprise pause ${c.runId}\``);
    expect(abort).toContain(`\`reprise abort ${c.runId}\``);
    expect(abort).toContain('nothing is half-committed');
    expect(abort).toContain('exits with code 4');
    expect(abort).toContain('**Resume**');
  });

  it('says how to identify and reverse each effect, and says so when an effect cannot be reversed', async () => {
    const c = await example('notifications-redrive');
    const md = renderRunbook(c);
    const rev = md.slice(md.indexOf('## 6. Identify and reverse each effect'));
    expect(rev).toContain(`\`reprise ledger ${c.runId} --effect mark_redriven\``);
    expect(rev).toContain(`\`reprise reverse ${c.runId} --effect mark_redriven [--item <key>] --execute\``);
    expect(rev).toContain('needs a `reverse` approval (1 approver)');
    expect(rev).toContain('`:before.<column>` from the preview row kept in the ledger');
    expect(rev).toMatch(/### `send_push` \(http, dedupe\)\n\n- Identify: .*\n- Reverse: \*\*no `reverse` is declared, so reprise cannot compensate this effect\.\*\* List what was applied/);
    expect(rev).toMatch(/### `send_push_unconfirmed` \(http, suppress\)\n\n.*--status suppressed.*\n- Reverse: nothing to reverse/);
  });
});

describe('runbook of a module effect', () => {
  it('pins the module and says how its reverse works', async () => {
    const c = await compileSource(fsPlanSource(join(root, 'test', 'compiler', 'fixtures', 'with-module.yaml')));
    const md = renderRunbook(c);
    expect(md).toContain(`| module of \`recompute_cache\` | \`./effect-module.ts\` | \`${c.manifest.files.modules[0]!.sha256}\` |`);
    expect(md).toContain('| `recompute_cache` | module | `apply` of `./effect-module.ts` | **replay** | apply | — | — | declared |');
    expect(md).toContain('calls `undo` of `./effect-module.ts` with the call\'s arguments.');
    expect(md).toContain('Protect probes: **none**');
    expect(md).toContain('**Dedupe store**: none');
  });
});
