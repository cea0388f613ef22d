#!/usr/bin/env node
/**
 * `npm run bench [-- name…]`: builds reprise (the benchmarks run the CLI from dist/, as users
 * do), then runs each benchmark — `bench/<name>.mjs`, or every `bench/*.mjs` but this runner —
 * one after the other, each in its own process with the terminal's output. Exits non-zero when
 * any benchmark does (a benchmark exits 1 when it misses its goal).
 *
 * Adding one: drop `bench/<name>.mjs` that prints its figures and sets its exit code; record the
 * command and the figures in docs/benchmarks.md. REPRISE_BENCH_NO_BUILD=1 skips the build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const names = process.argv.slice(2).map((a) => basename(a).replace(/\.mjs$/, ''));
const all = readdirSync(here).filter((f) => f.endsWith('.mjs') && f !== 'run.mjs').map((f) => f.replace(/\.mjs$/, '')).sort();
const chosen = names.length ? names : all;
for (const n of chosen) {
  if (!existsSync(join(here, `${n}.mjs`))) {
    console.error(`bench: no benchmark ${n} (have: ${all.join(', ') || 'none'})`);
    process.exit(2);
  }
}

if (!process.env.REPRISE_BENCH_NO_BUILD) {
  const build = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

const failed = [];
for (const n of chosen) {
  console.log(`\n=== bench ${n} ===`);
  const started = Date.now();
  const r = spawnSync(process.execPath, [join(here, `${n}.mjs`)], { stdio: 'inherit', cwd: root, env: process.env });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) failed.push(n);
  console.log(`=== bench ${n}: ${r.status === 0 ? 'ok' : `failed (exit ${r.status ?? r.signal})`} in ${secs} s ===`);
}
if (failed.length) {
  console.error(`\nbench: ${failed.length} of ${chosen.length} failed: ${failed.join(', ')}`);
  process.exit(1);
}
