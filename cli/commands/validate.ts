import type { Command } from 'commander';
import { checkPlan } from '../../compiler/compile.js';
import { ExitCode } from '../../compiler/errors.js';
import { fsPlanSource } from '../../compiler/source.js';
import { contextOf } from '../main.js';
import { POLICY_DESCRIPTION, POLICY_FLAGS, policyOf } from '../policy.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check plans against the schema and every compile-time rule; all errors at once')
    .argument('<plan...>', 'plan files')
    .option(POLICY_FLAGS, POLICY_DESCRIPTION)
    .action((plans: string[], opts: { policy?: string }, cmd: Command) => {
      const { out } = contextOf(cmd);
      const policy = policyOf(opts.policy);
      if (policy) out.info(`policy    ${policy.file}`);
      let bad = 0;
      for (const path of plans) {
        let problems;
        try {
          problems = checkPlan(fsPlanSource(path), { policy }).diagnostics;
        } catch (e) {
          if ((e as { code?: string }).code === 'PLAN_NOT_FOUND') { out.error(e as never); bad++; continue; }
          throw e;
        }
        if (problems.length) {
          bad++;
          out.problems(problems);
          out.result(`${path}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, { level: 'summary', plan: path, ok: false, problems: problems.length, ...(policy ? { policy: policy.file } : {}) });
        } else {
          out.result(`${path}: ok`, { level: 'summary', plan: path, ok: true, problems: 0, ...(policy ? { policy: policy.file } : {}) });
        }
      }
      process.exitCode = bad ? ExitCode.invalidInput : ExitCode.ok;
    });
}
