-- Target tables of orders-tax-recompute.yaml (the orders database), for tests and the demo.
create table if not exists orders (
  id              bigint primary key,
  customer_id     bigint not null,
  subtotal_cents  bigint not null check (subtotal_cents >= 0),
  region          text not null,
  status          text not null check (status in ('draft', 'invoiced', 'cancelled')),
  created_at      timestamptz not null
);
create index if not exists orders_created_at on orders (created_at);

create table if not exists invoices (
  order_id        bigint primary key references orders (id),
  total_cents     bigint not null,
  tax_cents       bigint not null
);

-- Where each live consumer started reading (the liveBoundary watermark).
create table if not exists consumer_offsets (
  consumer        text primary key,
  started_at      timestamptz not null,
  position        bigint not null default 0
);
