import type { Command } from 'commander';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { startMetricsServer, type MetricsServer, type RunMetrics } from '../../executor/monitor/index.js';
import { createPreflight } from '../../executor/stages/preflight.js';
import { runStage, type StageOutcome } from '../../executor/stages/run.js';
import { protectProbesCheck } from '../../executor/throttle/index.js';
import { contextOf } from '../main.js';
import { POLICY_DESCRIPTION, POLICY_FLAGS, policyOf } from '../policy.js';
import { cliRunEvents } from '../run-events.js';
import { stateUrlOf } from '../state.js';
import type { Output } from '../output.js';

/**
 * @internal Tests of the run engine (test/support/reprise-engine.mjs) switch the approval
 * preflight off, as a library caller of runStage does; the shipped binary (bin/reprise.js) never does.
 */
export const runCommandSettings = { approvals: true };

/** SIGINT/SIGTERM stop the stage cleanly (exit 4); a second signal leaves at once. */
export function stopOnSignals(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onSignal = (): void => {
    if (ac.signal.aborted) process.exit(ExitCode.stopped);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { signal: ac.signal, dispose: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); } };
}

export function printOutcome(out: Output, o: StageOutcome): void {
  if (o.reportFiles) out.info(`report    ${o.reportFiles.md}`);
  out.result(
    o.report ? `${o.stage} ${o.outcome} — report ${o.report.hash}` : `${o.stage} ${o.outcome}`,
    { level: 'result', run: o.runId, stage: o.stage, outcome: o.outcome, report: o.report?.hash ?? null, files: o.reportFiles ?? null, stop: o.stop ?? null, exitCode: o.exitCode },
  );
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a stage for real (canary, then full): verify approvals, go/no-go, process, report')
    .argument('<plan>', 'plan file')
    .requiredOption('--stage <stage>', 'canary | full')
    .option('--approvals <dir>', 'approval files', 'approvals')
    .option('--trust <file>', 'allowed_signers file (env REPRISE_TRUST)')
    .option('--reports <dir>', 'report directory', 'reports')
    .option('--workers <n>', 'workers in this process', '1')
    .option('--metrics-port <port>', 'serve Prometheus metrics on this port')
    .option('--manifest <file>', 'hold the run to this compiled manifest (its bytes must be canonical and its hash the plan\'s)')
    .option(POLICY_FLAGS, POLICY_DESCRIPTION)
    .action(async (plan: string, opts: { stage: string; approvals: string; trust?: string; reports: string; workers: string; manifest?: string; metricsPort?: string; policy?: string }, cmd: Command) => {
      const { out, globals } = contextOf(cmd);
      if (opts.stage !== 'canary' && opts.stage !== 'full') {
        throw new RepriseError('USAGE', `--stage must be canary or full, got ${opts.stage}`, { hint: 'the dry-run has its own command: reprise dry-run <plan>' });
      }
      const workers = Number(opts.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new RepriseError('USAGE', `--workers must be a whole number from 1 to 256, got ${opts.workers}`);
      const metricsPort = opts.metricsPort === undefined ? undefined : Number(opts.metricsPort);
      if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)) {
        throw new RepriseError('USAGE', `--metrics-port must be a port number from 0 to 65535, got ${opts.metricsPort}`, { hint: '0 picks a free port' });
      }
      // Read now (its own mistakes: exit 2); the plan meets it or is refused as it compiles, before anything is opened.
      const policy = policyOf(opts.policy);
      // The endpoint is up for the whole command; the run's metrics appear once the run is open.
      let runMetrics: RunMetrics | undefined;
      let server: MetricsServer | undefined;
      if (metricsPort !== undefined) {
        server = await startMetricsServer(metricsPort, {
          metrics: async () => (runMetrics ? runMetrics.metrics() : ''),
          get contentType() {
            return runMetrics?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8';
          },
        });
        process.stderr.write(`metrics   ${server.url}\n`);
      }
      // Approvals and the go/no-go table, before any item is processed (the trust file is read now: exit 2 without one).
      const preflight = runCommandSettings.approvals ? createPreflight({ approvalsDir: opts.approvals, trustPath: opts.trust, reportsDir: opts.reports, out, probes: (run) => protectProbesCheck(run) }) : undefined;
      const events = cliRunEvents(out);
      const stop = stopOnSignals();
      try {
        const outcome = await runStage({
          plan,
          stage: opts.stage,
          policy,
          preflight,
          stateUrl: stateUrlOf(globals),
          workers,
          reportsDir: opts.reports,
          manifestFile: opts.manifest,
          events,
          signal: stop.signal,
          metrics: server ? (m) => { runMetrics = m; } : undefined,
        });
        events.close();
        printOutcome(out, outcome);
        process.exitCode = outcome.exitCode;
      } finally {
        events.close();
        stop.dispose();
        await server?.close();
      }
    });
}

export function registerDryRun(program: Command): void {
  program
    .command('dry-run')
    .description('count, run the handler over every item with every effect captured and none applied, fingerprint targets')
    .argument('<plan>', 'plan file')
    .option('--reports <dir>', 'report directory', 'reports')
    .action(async (plan: string, opts: { reports: string }, cmd: Command) => {
      const { out, globals } = contextOf(cmd);
      const events = cliRunEvents(out);
      const stop = stopOnSignals();
      try {
        const outcome = await runStage({ plan, stage: 'dry-run', stateUrl: stateUrlOf(globals), reportsDir: opts.reports, events, signal: stop.signal });
        events.close();
        printOutcome(out, outcome);
        process.exitCode = outcome.exitCode;
      } finally {
        events.close();
        stop.dispose();
      }
    });
}
