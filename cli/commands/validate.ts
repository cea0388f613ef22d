import type { Command } from 'commander';
import { checkPlan } from '../../compiler/compile.js';
import { ExitCode } from '../../compiler/errors.js';
import { fsPlanSource } from '../../compiler/source.js';
import { contextOf } from '../main.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check plans against the schema and every compile-time rule; all errors at once')
    .argument('<plan...>', 'plan files')
    .action((plans: string[], _opts, cmd: Command) => {
      const { out } = contextOf(cmd);
      let bad = 0;
      for (const path of plans) {
        let problems;
        try {
          problems = checkPlan(fsPlanSource(path)).diagnostics;
        } catch (e) {
          if ((e as { code?: string }).code === 'PLAN_NOT_FOUND') { out.error(e as never); bad++; continue; }
          throw e;
        }
        if (problems.length) {
          bad++;
          out.problems(problems);
          out.result(`${path}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, { level: 'summary', plan: path, ok: false, problems: problems.length });
        } else {
          out.result(`${path}: ok`, { level: 'summary', plan: path, ok: true, problems: 0 });
        }
      }
      process.exitCode = bad ? ExitCode.invalidInput : ExitCode.ok;
    });
}
