#!/usr/bin/env node
/**
 * Flat enumeration: peak memory of `reprise dry-run` over 100,000 items against 1,000,000 items.
 *
 * Seeds one table of 1,000,000 rows in a PostgreSQL database of its own, then runs the same plan
 * (same chunk size, same handler, one captured sql effect per item) over windows of it — the
 * first 100,000 rows, and all 1,000,000 (plus 500,000, printed to show where the peak levels
 * off) — each as a child process `node bin/reprise.js dry-run`, checked to have run the handler
 * over every item of its window.
 * The peak RSS of each child is measured twice: by `/usr/bin/time -v` around it (when present)
 * and by the child itself at exit (getrusage maxRSS, through bench/lib/report-maxrss.mjs).
 * Prints both peaks and the ratio; the goal is 1M / 100k <= 1.3 (exit 1 when missed).
 *
 *   npm run bench -- memory                    starts a throwaway PostgreSQL 15 (PG_BIN)
 *   REPRISE_BENCH_PG_URL=postgres://… npm run bench -- memory    uses that server instead
 *
 * The state store is a database of the same server (--state), so the embedded store's own
 * footprint does not blur the measure. Set REPRISE_BENCH_KEEP=1 to keep the database.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { stringify } from 'yaml';
import { tsImport } from 'tsx/esm/api';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const BIN = join(root, 'bin', 'reprise.js');
const PRELOAD = join(here, 'lib', 'report-maxrss.mjs');
const TOTAL = 1_000_000;
const SMALL = 100_000;
/** Not in the ratio: shows where the peak levels off between the two. */
const MIDDLE = 500_000;
const CHUNK_SIZE = 1000;
const GOAL = 1.3;
const WINDOW_START = Date.parse('2026-01-01T00:00:00Z');

function windowEnd(items) {
  // Row i (1-based) is created at WINDOW_START + (i - 1) seconds.
  return new Date(WINDOW_START + items * 1000).toISOString();
}

async function withClient(url, fn) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function databaseUrl(serverUrl, name) {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

function writePlan(dir, name, items) {
  const plan = {
    reprise: 1,
    name,
    revision: 1,
    owner: 'platform',
    author: 'bench@example.com',
    reason: `Memory benchmark: dry-run over ${items} items.`,
    connections: { events: { env: 'BENCH_DB_URL' } },
    selection: {
      connection: 'events',
      query: 'select id, payload from events where created_at >= :window_start and created_at < :window_end',
      key: 'id',
      window: { start: new Date(WINDOW_START).toISOString(), end: windowEnd(items) },
      expect: { min: items, max: items },
    },
    processing: { handler: './bench.handler.ts', timeoutMs: 5000, retries: { max: 0, backoffMs: 100 } },
    sideEffects: [
      {
        name: 'record',
        kind: 'sql',
        connection: 'events',
        statement: 'insert into results (id, v) values (:id, :v) on conflict (id) do update set v = excluded.v',
        backfill: 'replay',
        live: 'none',
      },
    ],
    rate: { itemsPerSecond: 100_000, concurrency: 8, chunkSize: CHUNK_SIZE, maxConnections: 8 },
    canary: { size: 10, pick: 'first' },
  };
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify(plan));
  return path;
}

/** Runs one dry-run in a child process; returns its peak RSS by both measures and its duration. */
async function measure(planPath, env, reports) {
  const rssFile = join(reports, `maxrss-${Date.now()}.json`);
  const useTime = existsSync('/usr/bin/time');
  const node = [process.execPath, '--import', PRELOAD, BIN, '--json', 'dry-run', planPath, '--reports', reports];
  const [cmd, args] = useTime ? ['/usr/bin/time', ['-v', ...node]] : [node[0], node.slice(1)];
  const started = Date.now();
  const child = spawn(cmd, args, { cwd: root, env: { ...env, REPRISE_BENCH_MAXRSS_FILE: rssFile }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise((r) => child.on('close', r));
  const seconds = (Date.now() - started) / 1000;
  if (code !== 0) throw new Error(`dry-run of ${planPath} exited ${code}:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  const self = JSON.parse(readFileSync(rssFile, 'utf8'));
  const timeKb = useTime ? Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1]) : undefined;
  const finished = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.type === 'finished');
  // The report says how many items the handler really ran over: a measure of a short run is no measure.
  const report = JSON.parse(readFileSync(finished.report?.json ?? finished.files?.json, 'utf8'));
  return { selfKb: self.maxRssKb, timeKb, seconds, processed: report.counts.processed, failed: report.counts.failed };
}

const mb = (kb) => (kb / 1024).toFixed(1);

async function main() {
  let server;
  let serverUrl = process.env.REPRISE_BENCH_PG_URL;
  if (!serverUrl) {
    const { startPostgres } = await tsImport('../test/support/servers.ts', import.meta.url);
    server = await startPostgres();
    serverUrl = server.url;
  }
  const name = `reprise_bench_memory_${Date.now().toString(36)}`;
  const stateName = `${name}_state`;
  const work = mkdtempSync(join(tmpdir(), 'reprise-bench-memory-'));
  // Handlers import 'reprise': the plan folder lives inside the repository, like a user's plans.
  mkdirSync(join(root, '.tmp'), { recursive: true });
  const planDir = mkdtempSync(join(root, '.tmp', 'bench-memory-'));
  try {
    await withClient(serverUrl, async (c) => {
      await c.query(`create database "${name}"`);
      await c.query(`create database "${stateName}"`);
    });
    const url = databaseUrl(serverUrl, name);
    const stateUrl = databaseUrl(serverUrl, stateName);
    const seedStarted = Date.now();
    const version = await withClient(url, async (c) => {
      await c.query('create table events (id bigint primary key, created_at timestamptz not null, payload int not null)');
      await c.query('create table results (id bigint primary key, v int not null)');
      await c.query(
        `insert into events select g, $2::timestamptz + (g - 1) * interval '1 second', ((g::bigint * 7919) % 100000)::int from generate_series(1, $1::int) g`,
        [TOTAL, new Date(WINDOW_START).toISOString()],
      );
      await c.query('create index events_created_at on events (created_at)');
      await c.query('analyze events');
      return (await c.query('show server_version')).rows[0].server_version;
    });
    console.log(`seeded ${TOTAL.toLocaleString('en')} rows in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s (PostgreSQL ${version}, Node ${process.version}, ${cpus().length} CPUs)`);

    writeFileSync(join(planDir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    writeFileSync(join(planDir, 'bench.handler.ts'), [
      "import { defineHandler } from 'reprise';",
      '',
      "export default defineHandler<{ id: string; payload: number }, 'record'>(async (row, ctx) => {",
      '  await ctx.effects.record({ id: row.id, v: row.payload + 1 });',
      '});',
      '',
    ].join('\n'));
    const small = writePlan(planDir, 'bench-memory-100k', SMALL);
    const middle = writePlan(planDir, 'bench-memory-500k', MIDDLE);
    const large = writePlan(planDir, 'bench-memory-1m', TOTAL);
    const env = { ...process.env, BENCH_DB_URL: url, REPRISE_STATE: stateUrl, NO_COLOR: '1', CI: '1' };

    const rows = [];
    for (const [label, items, plan] of [['100k', SMALL, small], ['500k', MIDDLE, middle], ['1M', TOTAL, large]]) {
      const m = await measure(plan, env, work);
      if (m.processed !== items || m.failed !== 0) throw new Error(`dry-run ${label} processed ${m.processed} items (${m.failed} failed), expected ${items}`);
      rows.push({ label, items, ...m });
      console.log(`dry-run ${label.padEnd(4)} ${items.toLocaleString('en').padStart(9)} items  ${m.seconds.toFixed(1).padStart(6)} s  ${Math.round(items / m.seconds).toLocaleString('en').padStart(7)} items/s  peak RSS ${mb(m.selfKb)} MB (getrusage)${m.timeKb ? `, ${mb(m.timeKb)} MB (/usr/bin/time -v)` : ''}`);
    }
    const a = rows[0];
    const b = rows[rows.length - 1];
    const ratio = b.selfKb / a.selfKb;
    const timeRatio = a.timeKb && b.timeKb ? b.timeKb / a.timeKb : undefined;
    console.log(`peak RSS ratio 1M / 100k: ${ratio.toFixed(3)} (getrusage)${timeRatio ? `, ${timeRatio.toFixed(3)} (/usr/bin/time -v)` : ''} — goal <= ${GOAL}: ${ratio <= GOAL && (timeRatio ?? 0) <= GOAL ? 'met' : 'MISSED'}`);
    console.log(JSON.stringify({ bench: 'memory', chunkSize: CHUNK_SIZE, node: process.version, postgres: version, cpus: cpus().length, runs: rows, ratio, timeRatio, goal: GOAL }));
    if (ratio > GOAL || (timeRatio ?? 0) > GOAL) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(planDir, { recursive: true, force: true });
    if (!process.env.REPRISE_BENCH_KEEP) {
      await withClient(serverUrl, async (c) => {
        await c.query(`drop database if exists "${name}" with (force)`);
        await c.query(`drop database if exists "${stateName}" with (force)`);
      }).catch(() => undefined);
    }
    server?.destroy();
  }
}

await main();
