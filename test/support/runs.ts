/**
 * What the executor tests read back after a run: the chunk table against the ledger (a chunk is
 * committed with all of its ledger rows or with none), the chunk commits a CLI process reported,
 * and waiting on the state store instead of sleeping.
 */
import pg from 'pg';

export interface ChunkLedger {
  chunks: number;
  committed: number;
  leased: number;
  pending: number;
  /** Committed chunks whose ledger rows are not exactly `callsPerItem` per committed item. */
  committedIncomplete: number;
  /** Ledger rows of chunks that are not committed (a partial commit). */
  ledgerOfUncommitted: number;
  /** runs.chunks_committed (incremented once per commit) and runs.items_done. */
  runChunksCommitted: number;
  runChunksTotal: number;
  itemsDone: number;
}

/** Checks every chunk of a run against its ledger rows; `callsPerItem` = effect calls per successful item. */
export async function chunkLedger(url: string, runId: string, callsPerItem: number, stage = 'full'): Promise<ChunkLedger> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const states = (await c.query(`select state, count(*)::int as n from reprise.chunks where run_id = $1 and stage = $2 group by state`, [runId, stage])).rows;
    const n = (s: string): number => states.find((r) => r.state === s)?.n ?? 0;
    const incomplete = await c.query(
      `select count(*)::int as n from reprise.chunks ch
        where ch.run_id = $1 and ch.stage = $2 and ch.state = 'committed'
          and (select count(*) from reprise.ledger l where l.run_id = ch.run_id and l.chunk_seq = ch.seq) <> ch.items * $3::int`,
      [runId, stage, callsPerItem],
    );
    const orphan = await c.query(
      `select count(*)::int as n from reprise.ledger l join reprise.chunks ch on ch.run_id = l.run_id and ch.seq = l.chunk_seq
        where l.run_id = $1 and ch.state <> 'committed'`,
      [runId],
    );
    const run = (await c.query(`select chunks_committed, chunks_total, items_done from reprise.runs where id = $1`, [runId])).rows[0];
    return {
      chunks: states.reduce((s, r) => s + r.n, 0),
      committed: n('committed'),
      leased: n('leased'),
      pending: n('pending'),
      committedIncomplete: incomplete.rows[0].n,
      ledgerOfUncommitted: orphan.rows[0].n,
      runChunksCommitted: run?.chunks_committed ?? 0,
      runChunksTotal: run?.chunks_total ?? 0,
      itemsDone: Number(run?.items_done ?? 0),
    };
  } finally {
    await c.end();
  }
}

/** JSON event lines of a `reprise --json run` output. */
export function jsonLines(stdout: string): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a partial line of a killed process
    }
  }
  return out;
}

/** Sequence numbers of the chunks a `reprise --json run` process reports it committed. */
export function committedSeqs(stdout: string): number[] {
  return jsonLines(stdout).filter((e) => e.type === 'chunk').map((e) => Number(e.seq));
}

/** The run id a `reprise --json run` process announced. */
export function runIdOf(stdout: string): string | undefined {
  return jsonLines(stdout).find((e) => e.type === 'start')?.run;
}

/** Polls `check` until it returns a value other than undefined (no fixed sleeps in assertions). */
export async function waitUntil<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 90_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Counts of committed chunks of a run, straight from the state store. */
export async function committedChunks(url: string, runId: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(`select count(*)::int as n from reprise.chunks where run_id = $1 and state = 'committed'`, [runId])).rows[0].n;
  } finally {
    await c.end();
  }
}
