/**
 * The orders scenario (plans/examples/orders-tax-recompute): its tables, seeded with a window of
 * invoiced orders whose invoices carry the buggy totals, in a database of the test's own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { examplesDir } from './plans.js';

export const ORDERS_SCHEMA = readFileSync(join(examplesDir, 'orders-tax-recompute.schema.sql'), 'utf8');

/** Seeds `n` invoiced orders inside the window (ids 1..n) plus a few outside it and some drafts. */
export async function seedOrders(url: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(ORDERS_SCHEMA);
    await c.query(
      `insert into orders (id, customer_id, subtotal_cents, region, status, created_at)
       select g, 1000 + g % 97, 1000 + (g * 7919) % 50000,
              (array['eu-de','eu-fr','eu-nl','us-ca','us-ny','us-tx'])[1 + g % 6],
              'invoiced', timestamptz '2026-10-01' + ((g * 60) % (41 * 86400)) * interval '1 second'
       from generate_series(1, $1::int) g`,
      [n],
    );
    // Outside the window, or not invoiced: never selected.
    await c.query(
      `insert into orders (id, customer_id, subtotal_cents, region, status, created_at)
       values ($1::bigint + 1, 1, 100, 'eu-de', 'invoiced', '2026-09-30T23:59:59Z'),
              ($1::bigint + 2, 1, 100, 'eu-de', 'invoiced', '2026-11-12T00:00:00Z'),
              ($1::bigint + 3, 1, 100, 'eu-de', 'draft', '2026-10-05T00:00:00Z')`,
      [n],
    );
    // The buggy invoicer: tax truncated per line, a cent or so short.
    await c.query(`insert into invoices (order_id, total_cents, tax_cents) select id, subtotal_cents + subtotal_cents / 10, subtotal_cents / 10 from orders where status = 'invoiced'`);
    await c.query(`insert into consumer_offsets (consumer, started_at) values ('invoicer', '2026-11-11T00:00:00Z')`);
  } finally {
    await c.end();
  }
}
