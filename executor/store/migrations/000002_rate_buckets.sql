-- reprise state schema, version 2: the shared rate bucket of runs without a Redis connection.
-- Append-only: never edit a migration that has shipped; add the next numbered file instead.

-- One row per bucket (a run's id). A generic cell rate algorithm: `tat` (theoretical arrival
-- time) is when the bucket is next free. A worker reserves n items in one statement:
--   tat := greatest(tat, now) + n / itemsPerSecond
-- and waits until the old greatest(tat, now) before starting them. Every time is the database's
-- clock, so the clocks of the machines running workers do not matter.
create table reprise.rate_buckets (
  key              text primary key,                         -- the run id
  tat              timestamptz not null,
  updated_at       timestamptz not null default now()
);
