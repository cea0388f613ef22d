import type { Command } from 'commander';
import { DEFAULT_APPROVALS_DIR } from '../../executor/approvals/load.js';
import { collectCiComment, DEFAULT_REPORTS_DIR } from '../../ci/collect.js';
import { ciCommentMarker, renderCiComment } from '../../ci/comment.js';
import { contextOf } from '../main.js';
import { POLICY_DESCRIPTION, POLICY_FLAGS, policyOf } from '../policy.js';

interface CiCommentOptions {
  base?: string;
  reports: string;
  approvals: string;
  trust?: string;
  artifactsUrl?: string;
  policy?: string;
}

export function registerCiComment(program: Command): void {
  program
    .command('ci-comment')
    .description('the pull-request comment (Markdown on stdout): runbook summary, diff against the base branch, dry-run summary, approvals still needed')
    .argument('<plan>', 'plan file')
    .option('--base <ref>', 'git revision to diff against (default: REPRISE_BASE_REF, else origin/$GITHUB_BASE_REF or origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME, else origin/main)')
    .option('--reports <dir>', 'where this run\'s dry-run and canary reports are', DEFAULT_REPORTS_DIR)
    .option('--approvals <dir>', 'folder of approval files (or one file)', DEFAULT_APPROVALS_DIR)
    .option('--trust <file>', 'allowed_signers file to check the approvals against (env REPRISE_TRUST); without one they are listed unverified')
    .option('--artifacts-url <url>', 'the CI run\'s page, where reviewers download the reports; linked from the comment')
    .option(POLICY_FLAGS, `${POLICY_DESCRIPTION}; a violation refuses the comment as compile refuses the plan`)
    .action(async (plan: string, opts: CiCommentOptions, cmd: Command) => {
      const { out } = contextOf(cmd);
      const policy = policyOf(opts.policy);
      const input = await collectCiComment({ plan, base: opts.base, reportsDir: opts.reports, approvalsDir: opts.approvals, trust: opts.trust, artifactsUrl: opts.artifactsUrl, policy });
      const body = renderCiComment(input);
      const { base, dryRun } = input;
      if (base.kind === 'unavailable') out.warn(`no diff: cannot read ${base.ref} (${base.reason}) — ${base.hint}`);
      if (base.kind === 'invalid') out.warn(`no diff: the plan at ${base.ref} does not compile (${base.problems.map((p) => p.code).join(', ')})`);
      if (dryRun.kind === 'unusable') out.warn(`${dryRun.path}: ${dryRun.code} ${dryRun.message}`);
      if (!out.json) {
        process.stdout.write(body);
        return;
      }
      const stage = (s: typeof input.approvals.canary): Record<string, unknown> => ({
        min: s.min,
        trustChecked: s.trustChecked,
        valid: s.accepted.map((a) => a.approver),
        stillNeeded: Math.max(0, s.min - s.accepted.length),
      });
      out.record({
        level: 'result',
        marker: ciCommentMarker(input.compiled.plan.name),
        plan: input.compiled.plan.name,
        revision: input.compiled.plan.revision,
        runId: input.compiled.runId,
        manifest: input.compiled.hash,
        ...(policy ? { policy: policy.file } : {}),
        base: { ref: base.ref, kind: base.kind, ...(base.kind === 'diff' ? { hashChanged: base.diff.hashChanged, changes: base.diff.changes.length } : {}) },
        dryRun: dryRun.kind === 'found' ? { path: dryRun.path, hash: dryRun.report.hash, outcome: dryRun.report.outcome } : { path: dryRun.path, kind: dryRun.kind },
        approvals: { canary: stage(input.approvals.canary), full: stage(input.approvals.full) },
        body,
      });
    });
}
