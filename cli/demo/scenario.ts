/**
 * The demo's scenario: a shop whose order-confirmation consumer was down from 09:00 to 13:00 UTC
 * on 2026-11-03. Orders paid in that window were never confirmed: no `confirmed_at`, no
 * `order.confirmed` event in the outbox. Customers already got an apology from support, so the
 * automatic confirmation email must NOT go out again. When the consumer came back, it confirmed
 * a few orders itself (claiming their keys through reprise/live), so the backfill must skip those.
 */

export const PLAN_FILE = 'order-confirmations-replay.yaml';
export const HANDLER_FILE = 'order-confirmations-replay.handler.ts';
export const AUTHOR = 'dana@shop.example';
export const REVIEWER = 'riley@shop.example';
/** Paid orders in the outage window (the count guard brackets it). */
export const IN_WINDOW = 2304;
export const LIVE_RECOVERED = 30;

export const PLAN = `# Replays the order confirmations missed while the confirmation consumer was down.
# Written by reprise demo: a walkthrough on an embedded database, nothing leaves this machine.
reprise: 1
name: order-confirmations-replay
revision: 1
owner: checkout-platform
author: ${AUTHOR}
reason: >
  The order-confirmation consumer was down from 09:00 to 13:00 UTC on 2026-11-03. Orders paid
  in that window were never confirmed and no order.confirmed event was published.
ticket: INC-7314

connections:
  shop: { env: DEMO_SHOP_DATABASE_URL }

selection:
  connection: shop
  query: |
    select id, customer_id, total_cents, created_at, confirmed_at
    from orders
    where created_at >= :window_start and created_at < :window_end and status = 'paid'
  key: id
  window: { start: 2026-11-03T09:00:00Z, end: 2026-11-03T13:00:00Z }
  expect: { min: 2200, max: 2400 }

processing:
  handler: ./${HANDLER_FILE}
  timeoutMs: 5000
  retries: { max: 2, backoffMs: 100 }

sideEffects:
  - name: mark_confirmed
    kind: sql
    description: Records when the order was confirmed.
    connection: shop
    statement: update orders set confirmed_at = :confirmed_at where id = :order_id
    preview: select id as order_id, confirmed_at from orders where id = :order_id
    backfill: replay
    live: apply
    reverse:
      statement: update orders set confirmed_at = :before.confirmed_at where id = :order_id
  - name: publish_order_confirmed
    kind: sql
    description: Appends the order.confirmed event to the outbox, once per order across backfill and live.
    connection: shop
    statement: |
      insert into outbox (topic, key, payload)
      values ('order.confirmed', 'order-confirmed:' || :order_id, :payload)
    idempotent: false
    backfill: dedupe
    live: dedupe
    dedupeKey: "order-confirmed:{order_id}"
    delivery: at-most-once
  - name: email_confirmation
    kind: http
    description: The automatic "your order is confirmed" email.
    method: POST
    url: https://mailer.shop.example/v1/send
    args: [customer_id, order_id, template]
    backfill: suppress
    live: apply

dedupe:
  store: postgres
  connection: shop
  namespace: order-events
  ttl: 90d

rate:
  itemsPerSecond: 1500
  concurrency: 8
  chunkSize: 200
  maxConnections: 10

canary:
  size: 50
  pick: sample
  validate:
    - name: confirmed-after-created
      connection: shop
      query: select count(*) = 0 as ok from orders where confirmed_at < created_at
    - name: one-event-per-order
      connection: shop
      query: select count(*) = count(distinct key) as ok from outbox where topic = 'order.confirmed'

checkpoint:
  connection: shop

approvals:
  canary: { min: 1 }
  full: { min: 1 }
  reverse: { min: 1 }
`;

export const HANDLER = `/**
 * Confirms one order missed during the outage: records its confirmation time (one minute after
 * it was paid, as the consumer would have), publishes its order.confirmed event, and asks for
 * the confirmation email — which the plan suppresses: customers already heard from support.
 */
import { defineHandler } from 'reprise';

interface Order {
  id: string;
  customer_id: string;
  total_cents: string;
  created_at: Date;
  confirmed_at: Date | null;
}

type Effects = 'mark_confirmed' | 'publish_order_confirmed' | 'email_confirmation';

export default defineHandler<Order, Effects>(async (order, ctx) => {
  const confirmedAt = order.confirmed_at ?? new Date(order.created_at.getTime() + 60_000);
  await ctx.effects.mark_confirmed({ order_id: order.id, confirmed_at: confirmedAt.toISOString() });
  await ctx.effects.publish_order_confirmed({
    order_id: order.id,
    payload: { order_id: order.id, customer_id: order.customer_id, total_cents: order.total_cents, confirmed_at: confirmedAt.toISOString() },
  });
  await ctx.effects.email_confirmation({ customer_id: order.customer_id, order_id: order.id, template: 'order-confirmed' });
});
`;

/** Tables and data: 2,400 paid orders in the outage window, normal traffic around it, an outbox. */
export const SEED_SQL = `
create table orders (
  id           bigint primary key,
  customer_id  bigint not null,
  total_cents  bigint not null,
  status       text not null check (status in ('paid', 'cancelled')),
  created_at   timestamptz not null,
  confirmed_at timestamptz
);
create index orders_created_at on orders (created_at);
create table outbox (
  id         bigserial primary key,
  topic      text not null,
  key        text not null,
  payload    jsonb not null,
  created_at timestamptz not null default now()
);
-- Before, during and after the outage: an order every 6 seconds from 07:00 to 14:00, 1 in 25 cancelled.
insert into orders (id, customer_id, total_cents, status, created_at, confirmed_at)
select g,
       1000 + (g * 7) % 613,
       500 + (g * 7919) % 25000,
       case when g % 25 = 0 then 'cancelled' else 'paid' end,
       timestamptz '2026-11-03T07:00:00Z' + g * interval '6 seconds',
       case when g % 25 <> 0 and (timestamptz '2026-11-03T07:00:00Z' + g * interval '6 seconds' < '2026-11-03T09:00:00Z'
                                  or timestamptz '2026-11-03T07:00:00Z' + g * interval '6 seconds' >= '2026-11-03T13:00:00Z')
            then timestamptz '2026-11-03T07:00:00Z' + g * interval '6 seconds' + interval '20 seconds' end
from generate_series(1, 4200) g;
-- Back at 13:00, the consumer confirmed the last ${LIVE_RECOVERED} paid orders of the window itself.
update orders set confirmed_at = '2026-11-03T13:00:30Z'
 where id in (select id from orders where status = 'paid' and created_at < '2026-11-03T13:00:00Z' order by created_at desc limit ${LIVE_RECOVERED});
-- The consumer published events for the orders it confirmed.
insert into outbox (topic, key, payload, created_at)
select 'order.confirmed', 'order-confirmed:' || id, jsonb_build_object('order_id', id::text), confirmed_at
from orders where confirmed_at is not null and status = 'paid';
-- …and claimed their event keys through reprise/live, as a live consumer does.
insert into reprise.dedupe_keys (namespace, key, owner, state, item_key, expires_at)
select 'order-events', 'order-confirmed:' || id, 'live:order-confirmations', 'applied', id::text, now() + interval '90 days'
from orders where confirmed_at = '2026-11-03T13:00:30Z';
`;
