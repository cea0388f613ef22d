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

-- The ledger: every effect call of every committed chunk. Stored one row per chunk and effect
-- (parallel arrays, one element per call: a chunk's ledger is a single insert in its commit
-- transaction), and read one row per call through the view reprise.ledger below.
create table reprise.ledger_batches (
  id               bigserial unique,
  run_id           text not null references reprise.runs (id) on delete cascade,
  stage            text not null check (stage in ('canary', 'full')),
  chunk_seq        integer not null,
  effect           text not null,
  policy           text not null check (policy in ('replay', 'suppress', 'dedupe')),
  item_keys        text[] not null,
  call_indexes     integer[] not null,                      -- nth call of this effect by that item
  statuses         text[] not null,
  dedupe_keys      text[] not null,
  payloads         jsonb not null,                          -- the arguments the handler passed, per call
  befores          jsonb,                                   -- preview rows read just before applying, per call
  errors           text[] not null,
  counts           jsonb not null,                          -- calls per status, for reports
  at               timestamptz not null default now(),
  primary key (run_id, chunk_seq, effect),
  check (cardinality(item_keys) between 1 and 1048575),
  check (cardinality(call_indexes) = cardinality(item_keys) and cardinality(statuses) = cardinality(item_keys)
         and cardinality(dedupe_keys) = cardinality(item_keys) and cardinality(errors) = cardinality(item_keys)),
  check (jsonb_typeof(payloads) = 'array' and jsonb_array_length(payloads) = cardinality(item_keys)),
  check (befores is null or (jsonb_typeof(befores) = 'array' and jsonb_array_length(befores) = cardinality(item_keys))),
  check (statuses <@ array['applied', 'suppressed', 'skipped-dup', 'claimed', 'failed']::text[]),
  check (policy = 'suppress' or not (statuses && array['suppressed']::text[])),
  check (policy = 'dedupe' or not (statuses && array['skipped-dup', 'claimed']::text[])),
  check ((policy = 'dedupe') = (array_position(dedupe_keys, null) is null))
);

-- Compensations applied by `reprise reverse`: a ledger call listed here reads as `reversed`.
create table reprise.reversals (
  run_id           text not null references reprise.runs (id) on delete cascade,
  item_key         text not null,
  effect           text not null,
  call_index       integer not null,
  reversed_at      timestamptz not null default now(),
  reversed_by      text not null,
  primary key (run_id, item_key, effect, call_index)
);

create view reprise.ledger as
  select (b.id * 1048576 + u.ord)::bigint as id,
         b.run_id, b.stage, b.chunk_seq, u.item_key, b.effect, u.call_index, b.policy,
         case when r.run_id is not null then 'reversed' else u.status end as status,
         u.dedupe_key,
         b.payloads -> (u.ord::int - 1) as payload,
         b.befores -> (u.ord::int - 1) as before,
         u.error, b.at, r.reversed_at, r.reversed_by
    from reprise.ledger_batches b
   cross join lateral unnest(b.item_keys, b.call_indexes, b.statuses, b.dedupe_keys, b.errors)
         with ordinality as u(item_key, call_index, status, dedupe_key, error, ord)
    left join reprise.reversals r
      on r.run_id = b.run_id and r.item_key = u.item_key and r.effect = b.effect and r.call_index = u.call_index
     and u.status = 'applied';

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
