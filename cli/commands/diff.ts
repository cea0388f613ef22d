import type { Command } from 'commander';
import { diffRecords, diffSources, formatDiff } from '../../compiler/diff.js';
import { fsPlanSource, gitPlanSource, parseGitSpec, type PlanSource } from '../../compiler/source.js';
import { contextOf } from '../main.js';

/** A plan file, or `REF:PATH` for the plan as committed at a git revision. */
function sourceOf(spec: string): PlanSource {
  const git = parseGitSpec(spec);
  return git ? gitPlanSource(git.ref, git.path) : fsPlanSource(spec);
}

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('field-level and manifest diff of two plan revisions (files, or git-ref:path)')
    .argument('<a>', 'the old plan: a file, or REF:PATH (e.g. main:plans/x.yaml)')
    .argument('<b>', 'the new plan: a file, or REF:PATH')
    .action(async (a: string, b: string, _opts, cmd: Command) => {
      const { out } = contextOf(cmd);
      const d = await diffSources(sourceOf(a), sourceOf(b));
      if (out.json) for (const r of diffRecords(d)) out.record(r);
      else process.stdout.write(formatDiff(d));
    });
}
