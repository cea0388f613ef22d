-- Target tables of webhook-redelivery.yaml (the webhooks database), for tests and the demo.
-- The dead-letter dump (webhook-redelivery.dead-letters.jsonl) is an export of this table.
create table if not exists webhook_dead_letters (
  event_id         text not null,
  subscription_id  text not null,
  partner          text not null,
  event_type       text not null,
  occurred_at      timestamptz not null,
  attempts         integer not null,
  last_error       text not null,
  data             jsonb not null,
  status           text not null default 'dead'
                   check (status in ('dead', 'redelivered', 'delivered-by-live', 'discarded')),
  resolved_by      text,
  primary key (event_id, subscription_id)
);
create index if not exists webhook_dead_letters_open on webhook_dead_letters (occurred_at) where status = 'dead';
