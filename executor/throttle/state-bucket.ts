/**
 * The run's rate bucket in the state store (`reprise.rate_buckets`, one row per run), for plans
 * without a Redis connection. One statement reserves a batch atomically (the row lock serializes
 * workers of every process) on the database's clock. See bucket.ts for the algorithm.
 */
import type { SqlRunner } from '../db/database.js';
import type { BucketBackend } from './bucket.js';

/**
 * $1 the bucket (run id), $2 the reservation in microseconds. Returns the microseconds until the
 * reserved slot starts: the new tat, minus the reservation, minus the clock after the update.
 *
 * The statement commits without waiting for its WAL flush (`synchronous_commit` off for its own
 * transaction only): a reservation is not worth an fsync. A database crash may forget the last
 * reservations, which lets one batch start early once after the restart — never a sustained excess.
 */
export const RESERVE_SQL = `
with async_commit as (select set_config('synchronous_commit', 'off', true))
insert into reprise.rate_buckets as b (key, tat, updated_at)
select $1, clock_timestamp() + $2::float8 * interval '1 microsecond', clock_timestamp() from async_commit
on conflict (key) do update
   set tat = greatest(b.tat, clock_timestamp()) + $2::float8 * interval '1 microsecond',
       updated_at = clock_timestamp()
returning (extract(epoch from (b.tat - clock_timestamp())) * 1000000 - $2::float8)::float8 as wait_us`;

export class StateBucketBackend implements BucketBackend {
  constructor(private readonly db: SqlRunner, private readonly runId: string, readonly label = 'the state store') {}

  async reserve(n: number, microsPerItem: number): Promise<number> {
    const { rows } = await this.db.query<{ wait_us: number | string }>(RESERVE_SQL, [this.runId, n * microsPerItem]);
    return Number(rows[0]?.wait_us ?? 0);
  }
}
