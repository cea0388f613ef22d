/**
 * What the throttle and throughput benchmarks share: their own PostgreSQL (durable settings, as
 * in production) and Redis, or the servers named by REPRISE_BENCH_PG_URL / REPRISE_BENCH_REDIS_URL;
 * databases of their own; plan folders inside the repository (handlers import 'reprise');
 * workers started as processes of bench/lib/stage-worker.mjs; and small statistics.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { stringify } from 'yaml';
import { tsImport } from 'tsx/esm/api';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '..', '..');
export const STAGE_WORKER = join(here, 'stage-worker.mjs');

export async function withClient(url, fn) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export function databaseUrl(serverUrl, name) {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * PostgreSQL and (optionally) Redis for a benchmark. A server started here runs with
 * fsync, synchronous_commit and full_page_writes on (PostgreSQL's defaults, what production
 * runs), unlike the test servers.
 */
export async function servers({ redis = false } = {}) {
  const stops = [];
  let pgUrl = process.env.REPRISE_BENCH_PG_URL;
  let pgNote = 'REPRISE_BENCH_PG_URL';
  if (!pgUrl) {
    const { startPostgres } = await tsImport('../../test/support/servers.ts', import.meta.url);
    const server = await startPostgres();
    stops.push(() => server.destroy());
    pgUrl = server.url;
    await withClient(pgUrl, async (c) => {
      await c.query('alter system set fsync = on');
      await c.query('alter system set synchronous_commit = on');
      await c.query('alter system set full_page_writes = on');
      await c.query('select pg_reload_conf()');
    });
    pgNote = 'PostgreSQL 15 started for the benchmark (fsync, synchronous_commit, full_page_writes on; shared_buffers 256MB)';
  }
  let redisUrl = process.env.REPRISE_BENCH_REDIS_URL;
  if (redis && !redisUrl) {
    const { startRedis } = await tsImport('../../test/support/servers.ts', import.meta.url);
    const server = await startRedis();
    stops.push(() => server.destroy());
    redisUrl = server.url;
  }
  return {
    pgUrl,
    redisUrl,
    note: pgNote,
    async stop() {
      for (const s of stops.reverse()) await s();
    },
  };
}

export async function createDatabase(serverUrl, prefix) {
  const name = `${prefix}_${Date.now().toString(36)}`;
  await withClient(serverUrl, (c) => c.query(`create database "${name}"`));
  return { name, url: databaseUrl(serverUrl, name) };
}

export async function dropDatabase(serverUrl, name) {
  if (process.env.REPRISE_BENCH_KEEP) return;
  await withClient(serverUrl, (c) => c.query(`drop database if exists "${name}" with (force)`)).catch(() => undefined);
}

/** Writes a plan (object) and its files into a fresh folder under .tmp/ (so `import 'reprise'` resolves). */
export function writePlan(prefix, plan, files = {}) {
  mkdirSync(join(root, '.tmp'), { recursive: true });
  const dir = mkdtempSync(join(root, '.tmp', `${prefix}-`));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  const path = join(dir, `${plan.name}.yaml`);
  writeFileSync(path, stringify(plan));
  return { dir, path };
}

/**
 * Starts a worker process running one stage of a plan (bench/lib/stage-worker.mjs: runStage from
 * dist/, as a library caller does, without the approval preflight). Resolves with its outcome.
 * `nice` lowers the worker's CPU priority (a benchmark that shares its few cores between the
 * backfill's process and a live client uses it to stand for separate machines).
 */
export function startStage(planPath, env, { workers = 1, stage = 'full', nice = 0 } = {}) {
  const argv = [process.execPath, STAGE_WORKER, planPath, stage, String(workers)];
  const [cmd, ...args] = nice ? ['nice', '-n', String(nice), ...argv] : argv;
  const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise((res, rej) => {
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
      if (!line) return rej(new Error(`stage worker exited ${code} without an outcome:\n${stderr.slice(-3000)}`));
      res({ code, ...JSON.parse(line), stderr });
    });
  });
  return { child, done };
}

/** Sorted copy. */
export const sorted = (xs) => [...xs].sort((a, b) => a - b);

/** The q-quantile (0..1) of sorted values (nearest rank). */
export function quantile(sortedXs, q) {
  if (!sortedXs.length) return NaN;
  const i = Math.min(sortedXs.length - 1, Math.max(0, Math.ceil(q * sortedXs.length) - 1));
  return sortedXs[i];
}

/** The most values of sorted `times` within any closed window of `width`. */
export function maxInWindow(times, width) {
  let best = 0;
  let j = 0;
  for (let i = 0; i < times.length; i++) {
    while (j < times.length && times[j] <= times[i] + width) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

export function machine() {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}`;
}

export const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
