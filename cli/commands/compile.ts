import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { compilePlanFile } from '../../compiler/compile.js';
import { renderRunbook } from '../../compiler/runbook.js';
import { contextOf } from '../main.js';
import { POLICY_DESCRIPTION, POLICY_FLAGS, policyOf } from '../policy.js';

/** Writes a file atomically (temp file + rename), so a failed compile never leaves half a file. */
export function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export function registerCompile(program: Command): void {
  program
    .command('compile')
    .description('compile a plan into its frozen manifest and runbook; prints the hash last')
    .argument('<plan>', 'plan file')
    .option('--out <dir>', 'output directory', 'build')
    .option(POLICY_FLAGS, POLICY_DESCRIPTION)
    .action(async (plan: string, opts: { out: string; policy?: string }, cmd: Command) => {
      const { out } = contextOf(cmd);
      // The policy only refuses: the manifest and its hash are the same with or without it.
      const policy = policyOf(opts.policy);
      const compiled = await compilePlanFile(plan, { policy });
      const runbook = renderRunbook(compiled);
      const base = `${compiled.plan.name}.r${compiled.plan.revision}`;
      mkdirSync(opts.out, { recursive: true });
      const manifestPath = join(opts.out, `${base}.manifest.json`);
      const runbookPath = join(opts.out, `${base}.runbook.md`);
      writeAtomic(manifestPath, compiled.bytes);
      writeAtomic(runbookPath, runbook);
      out.info(`manifest  ${manifestPath}`);
      out.info(`runbook   ${runbookPath}`);
      out.info(`run id    ${compiled.runId}`);
      if (policy) out.info(`policy    ${policy.file} (met)`);
      out.result(compiled.hash, { level: 'result', plan, runId: compiled.runId, hash: compiled.hash, manifest: manifestPath, runbook: runbookPath, ...(policy ? { policy: policy.file } : {}) });
    });
}
