-- Target tables of notifications-redrive.yaml (the notifications database), for tests and the demo.
create table if not exists notifications (
  id               bigint primary key,
  user_id          bigint not null,
  category         text not null,
  title            text not null,
  body             text not null,
  status           text not null check (status in ('queued', 'sent', 'failed', 'cancelled')),
  created_at       timestamptz not null,
  sent_at          timestamptz,
  redrive_outcome  text check (redrive_outcome in ('resent', 'already-claimed', 'held-for-review')),
  redrive_run      text
);
create index if not exists notifications_unsent on notifications (created_at) where sent_at is null;

-- Where each live consumer started reading (the liveBoundary watermark).
create table if not exists consumer_offsets (
  consumer         text primary key,
  started_at       timestamptz not null,
  position         bigint not null default 0
);
