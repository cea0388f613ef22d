-- reprise state schema, version 1. Append-only: never edit a migration that has shipped;
-- add the next numbered file instead.

create table reprise.runs (
  id               text primary key,                       -- <name>.r<revision>.<hash8>
  plan             text not null,
  revision         integer not null check (revision >= 1),
  manifest_hash    text not null unique check (manifest_hash ~ '^sha256:[0-9a-f]{64}$'),
  manifest         jsonb not null,
  stage            text not null check (stage in ('dry-run', 'canary', 'full')),
  status           text not null check (status in ('pending', 'running', 'throttled', 'paused', 'aborted', 'failed', 'completed')),
  control          text not null default 'run' check (control in ('run', 'pause', 'abort')),
  total_items      bigint check (total_items >= 0),          -- count confirmed before processing
  items_done       bigint not null default 0 check (items_done >= 0),
  items_failed     bigint not null default 0 check (items_failed >= 0),
  planned_at       timestamptz,                              -- chunks cut (once per run)
  chunks_total     integer not null default 0,
  chunks_committed integer not null default 0 check (chunks_committed <= chunks_total),
  throttle         jsonb,                                    -- {probe, value, since} while throttled
  throttled_ms     bigint not null default 0,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  last_progress_at timestamptz
);

create table reprise.chunks (
  run_id           text not null references reprise.runs (id) on delete cascade,
  seq              integer not null check (seq >= 0),
  stage            text not null check (stage in ('canary', 'full')),
  lo               jsonb,                                    -- exclusive lower key bound (null: open)
  hi               jsonb,                                    -- inclusive upper key bound (null: open)
  keys             jsonb,                                    -- explicit item keys (canary chunks)
  state            text not null default 'pending' check (state in ('pending', 'leased', 'committed', 'failed')),
  lease_owner      text,
  lease_expires_at timestamptz,
  generation       integer not null default 0,               -- fencing token, +1 at each lease
  attempts         integer not null default 0,
  items            integer not null default 0,
  errors           integer not null default 0,
  committed_at     timestamptz,
  primary key (run_id, seq),
  check ((state = 'leased') = (lease_owner is not null and lease_expires_at is not null)),
  check ((state = 'committed') = (committed_at is not null))
);
create index chunks_leasable on reprise.chunks (run_id, stage, seq) where state in ('pending', 'leased');

create table reprise.ledger (
  id               bigserial primary key,
  run_id           text not null references reprise.runs (id) on delete cascade,
  stage            text not null check (stage in ('canary', 'full')),
  chunk_seq        integer not null,
  item_key         text not null,
  effect           text not null,
  call_index       integer not null check (call_index >= 0),  -- nth call of this effect by this item
  policy           text not null check (policy in ('replay', 'suppress', 'dedupe')),
  status           text not null check (status in ('applied', 'suppressed', 'skipped-dup', 'claimed', 'failed', 'reversed')),
  dedupe_key       text,
  payload          jsonb not null,                           -- the arguments the handler passed
  before           jsonb,                                    -- preview row read just before applying
  error            text,
  at               timestamptz not null default now(),
  reversed_at      timestamptz,
  reversed_by      text,
  unique (run_id, item_key, effect, call_index),
  check ((policy = 'dedupe') = (dedupe_key is not null)),
  check (status <> 'suppressed' or policy = 'suppress'),
  check (status not in ('skipped-dup', 'claimed') or policy = 'dedupe'),
  check ((status = 'reversed') = (reversed_at is not null))
);
create index ledger_by_effect on reprise.ledger (run_id, effect, status);

create table reprise.item_failures (
  run_id           text not null references reprise.runs (id) on delete cascade,
  stage            text not null check (stage in ('canary', 'full')),
  chunk_seq        integer not null,
  item_key         text not null,
  attempts         integer not null check (attempts >= 1),
  error            text not null,
  at               timestamptz not null default now(),
  primary key (run_id, item_key)
);

create table reprise.dedupe_keys (
  namespace        text not null,
  key              text not null,
  owner            text not null,                            -- run id, or the live consumer's name
  state            text not null check (state in ('claimed', 'applied')),
  item_key         text,
  at               timestamptz not null default now(),
  expires_at       timestamptz,
  primary key (namespace, key)
);

create table reprise.reports (
  run_id           text not null references reprise.runs (id) on delete cascade,
  stage            text not null check (stage in ('dry-run', 'canary', 'full', 'reverse')),
  hash             text not null check (hash ~ '^sha256:[0-9a-f]{64}$'),
  body             jsonb not null,
  created_at       timestamptz not null default now(),
  primary key (run_id, stage, hash)
);

create table reprise.events (
  id               bigserial primary key,
  run_id           text,
  at               timestamptz not null default now(),
  actor            text not null,                            -- user@host, or the worker id
  action           text not null,
  detail           jsonb not null default '{}'::jsonb
);
create index events_by_run on reprise.events (run_id, id);

create table reprise.approval_uses (
  approval_id      text primary key,                         -- sha256 of the signed statement
  run_id           text not null,
  stage            text not null,
  approver         text not null,
  used_at          timestamptz not null default now()
);

create table reprise.workers (
  run_id           text not null references reprise.runs (id) on delete cascade,
  worker_id        text not null,
  host             text not null,
  pid              integer not null,
  started_at       timestamptz not null default now(),
  heartbeat_at     timestamptz not null default now(),
  primary key (run_id, worker_id)
);
