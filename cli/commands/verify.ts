import type { Command } from 'commander';
import { compilePlanFile } from '../../compiler/compile.js';
import { evidenceFromReport, readReportFile } from '../../executor/approvals/evidence.js';
import { DEFAULT_APPROVALS_DIR, loadTrustFile, readApprovalSources, resolveTrustPath } from '../../executor/approvals/load.js';
import { parseApprovalStage } from '../../executor/approvals/statement.js';
import { assertApproved, requiredEvidenceField, verifyApprovals, type VerifyResult } from '../../executor/approvals/verify.js';
import { contextOf } from '../main.js';
import type { Output } from '../output.js';

interface VerifyOptions {
  stage: string;
  approvals: string;
  trust?: string;
  evidence?: string;
}

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('the executor\'s approval check, alone: which approvals count for a stage, and why others are refused')
    .argument('<plan>', 'plan file')
    .requiredOption('--stage <stage>', 'stage to check: canary | full | reverse')
    .option('--approvals <dir>', 'folder of approval files (or one file)', DEFAULT_APPROVALS_DIR)
    .option('--trust <file>', 'allowed_signers file of trusted approver keys (env REPRISE_TRUST)')
    .option('--evidence <report>', 'this run\'s report the approvals must cite: dry-run report for canary, canary report for full')
    .action(async (plan: string, opts: VerifyOptions, cmd: Command) => {
      const { out } = contextOf(cmd);
      const stage = parseApprovalStage(opts.stage);
      const trust = loadTrustFile(resolveTrustPath(opts.trust));
      const compiled = await compilePlanFile(plan);
      const evidence = opts.evidence === undefined ? {} : evidenceFromReport(stage, readReportFile(opts.evidence), compiled.hash);
      const needed = requiredEvidenceField(stage);
      const skipEvidenceCheck = needed !== undefined && opts.evidence === undefined;
      if (skipEvidenceCheck) {
        out.warn(`evidence not checked: pass --evidence with this run's ${stage === 'canary' ? 'dry-run' : 'canary'} report (reprise run always checks it against the report it recorded)`);
      }
      const result = verifyApprovals({
        manifestHash: compiled.hash,
        plan: compiled.plan.name,
        revision: compiled.plan.revision,
        author: compiled.plan.author,
        stage,
        min: compiled.plan.approvals[stage].min,
        expectedEvidence: evidence,
        skipEvidenceCheck,
        approvals: readApprovalSources(opts.approvals),
        trust,
        now: new Date(),
      });
      printApprovalTable(out, result);
      const summary = {
        level: 'result',
        ok: result.ok,
        plan: compiled.plan.name,
        revision: compiled.plan.revision,
        manifest: compiled.hash,
        stage,
        min: result.min,
        distinctPrincipals: result.distinctPrincipals,
        approvers: result.accepted.map((a) => a.approver),
        evidenceChecked: result.evidenceChecked,
      };
      if (result.ok) {
        const who = result.accepted.map((a) => a.approver).join(', ');
        out.result(`stage ${stage} approved by ${result.distinctPrincipals} distinct approver${result.distinctPrincipals === 1 ? '' : 's'} (${who}); ${result.min} required`, summary);
        return;
      }
      out.record(summary);
      assertApproved(result);
    });
}

/** One row per approval file: accepted, or refused with its code and reason (also used by `reverse --execute`). */
export function printApprovalTable(out: Output, result: VerifyResult): void {
  const rows: Array<[string, string, string, string]> = [];
  for (const a of result.accepted) {
    rows.push([a.file, 'accepted', a.approver, `signed with ${a.keyFingerprint}`]);
    out.record({ level: 'approval', file: a.file, status: 'accepted', approver: a.approver, approvalId: a.approvalId, key: a.keyFingerprint, expiresAt: a.statement.expiresAt });
  }
  for (const r of result.rejected) {
    rows.push([r.file, 'refused', r.approver ?? '-', `${r.code}: ${r.message}`]);
    out.record({ level: 'approval', file: r.file, status: 'refused', approver: r.approver ?? null, approvalId: r.approvalId ?? null, code: r.code, message: r.message, hint: r.hint ?? null });
  }
  if (rows.length === 0) return;
  rows.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const header: [string, string, string, string] = ['APPROVAL', 'RESULT', 'APPROVER', 'REASON'];
  const width = [0, 1, 2].map((i) => Math.max(header[i]!.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) out.info(`${r[0].padEnd(width[0]!)}  ${r[1].padEnd(width[1]!)}  ${r[2].padEnd(width[2]!)}  ${r[3]}`);
}
