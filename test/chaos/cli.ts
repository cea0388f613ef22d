/**
 * The chaos harness's command line: builds dist/ (the CLI under test), starts a dedicated
 * PostgreSQL and Redis, runs the trials one after another, prints a line per trial and the
 * final table, and exits 1 when any invariant was violated (2 on bad arguments).
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FAULT_KINDS, formatSummary, formatTrial, planTrials, runTrial, startChaosServers, summarize, type FaultKind, type TrialResult } from './harness.js';

const root = resolve(import.meta.dirname, '..', '..');

function range(text: string | undefined, what: string): [number, number] | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) {
    process.stderr.write(`chaos: --${what} takes N or MIN-MAX, got ${text}\n`);
    process.exit(2);
  }
  const lo = Number(m[1]);
  return [lo, m[2] ? Number(m[2]) : lo];
}

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    seed: { type: 'string', default: 'reprise' },
    items: { type: 'string' },
    seconds: { type: 'string' },
    'keep-failed': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    faults: { type: 'string' },
    only: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
const trials = Number(values.trials);
if (!Number.isInteger(trials) || trials < 1) {
  process.stderr.write(`chaos: --trials must be a positive whole number, got ${values.trials}\n`);
  process.exit(2);
}
const seed = values.seed!;

if (!values['no-build']) {
  process.stderr.write('chaos: building dist/ (npx tsc -p tsconfig.build.json)\n');
  const b = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(1);
}

const faults = values.faults?.split(',').map((f) => f.trim()).filter(Boolean) as FaultKind[] | undefined;
for (const f of faults ?? []) {
  if (!FAULT_KINDS.includes(f)) {
    process.stderr.write(`chaos: unknown fault ${f}; one of ${FAULT_KINDS.join(', ')}\n`);
    process.exit(2);
  }
}
const only = values.only?.split(',').map(Number);
const configs = planTrials(trials, seed, { items: range(values.items, 'items'), seconds: range(values.seconds, 'seconds'), faults });
const servers = await startChaosServers();
process.stderr.write(`chaos: PostgreSQL on ${servers.pg.port}, Redis on ${servers.redis.port}; ${trials} trials, seed ${seed}\n`);
const results: TrialResult[] = [];
let interrupted = false;
process.on('SIGINT', () => { interrupted = true; process.stderr.write('chaos: interrupted; finishing the current trial\n'); });
try {
  for (const cfg of configs) {
    if (interrupted) break;
    if (only && !only.includes(cfg.index)) continue;
    const res = await runTrial(servers, cfg, { keepFailed: values['keep-failed'], log: values.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined });
    results.push(res);
    process.stdout.write(`${formatTrial(res)}\n`);
    if (res.error) process.stderr.write(`${res.error}\n`);
    for (const note of res.notes) process.stderr.write(`trial ${res.config.index}: ${note}\n`);
  }
} finally {
  if (!values['keep-failed'] || results.every((r) => !r.violations.length)) await servers.destroy();
  else process.stderr.write(`chaos: servers left running for inspection: ${servers.pg.url} (data ${servers.pg.dataDir}), ${servers.redis.url}\n`);
}
const summary = summarize(results);
process.stdout.write(`\n${formatSummary(summary, seed)}\n`);
process.exitCode = summary.failedTrials > 0 || interrupted ? 1 : 0;
