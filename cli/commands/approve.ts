import type { Command } from 'commander';
import { compilePlanFile } from '../../compiler/compile.js';
import { parseDuration } from '../../compiler/duration.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { evidenceFromReport, readReportFile } from '../../executor/approvals/evidence.js';
import { loadSigner } from '../../executor/approvals/keys.js';
import { approvalId, buildStatement, DEFAULT_APPROVAL_TTL, parseApprovalStage, signStatement, writeApprovalFile } from '../../executor/approvals/statement.js';
import { DEFAULT_APPROVALS_DIR } from '../../executor/approvals/load.js';
import { contextOf } from '../main.js';

interface ApproveOptions {
  stage: string;
  key: string;
  approver: string;
  evidence?: string;
  expires: string;
  out: string;
}

export function registerApprove(program: Command): void {
  program
    .command('approve')
    .description('sign an approval of the plan\'s manifest hash for a stage; prints the approval id last')
    .argument('<plan>', 'plan file')
    .requiredOption('--stage <stage>', 'stage to allow: canary | full | reverse')
    .requiredOption('--key <file>', 'signing key: from `reprise keygen`, or your OpenSSH ed25519 key (signed with ssh-keygen -Y sign)')
    .requiredOption('--approver <principal>', 'your principal, as the trust file lists it (e.g. alice@example.com)')
    .option('--evidence <report>', 'report you reviewed: the dry-run report for canary, the canary report for full')
    .option('--expires <duration>', 'how long the approval stays valid', DEFAULT_APPROVAL_TTL)
    .option('--out <dir>', 'folder of approval files', DEFAULT_APPROVALS_DIR)
    .action(async (plan: string, opts: ApproveOptions, cmd: Command) => {
      const { out } = contextOf(cmd);
      const stage = parseApprovalStage(opts.stage);
      const ttl = parseDuration(opts.expires);
      if (ttl === undefined || ttl <= 0) {
        throw new RepriseError('USAGE', `--expires ${JSON.stringify(opts.expires)} is not a duration`, { exit: ExitCode.invalidInput, hint: 'e.g. --expires 72h, 30m, 7d' });
      }
      const approver = opts.approver.trim();
      if (approver === '' || /[\s,"]/.test(approver)) {
        throw new RepriseError('USAGE', `--approver ${JSON.stringify(opts.approver)} is not a principal`, {
          exit: ExitCode.invalidInput,
          hint: 'a principal has no spaces, commas or quotes, as in the trust file (e.g. alice@example.com)',
        });
      }
      const compiled = await compilePlanFile(plan);
      const { name, revision, author } = compiled.plan;
      if (approver.toLowerCase() === author.trim().toLowerCase()) {
        throw new RepriseError('APPROVAL_BY_AUTHOR', `${approver} is the author of ${name} r${revision} and may not approve it`, { exit: ExitCode.invalidInput, hint: 'ask another reviewer to approve' });
      }
      const evidence = evidenceFromReport(stage, opts.evidence === undefined ? undefined : readReportFile(opts.evidence), compiled.hash);
      const signer = loadSigner(opts.key);
      const issuedAt = new Date();
      const statement = buildStatement({
        manifest: compiled.hash,
        plan: name,
        revision,
        stage,
        evidence,
        approver,
        issuedAt,
        expiresAt: new Date(issuedAt.getTime() + ttl),
      });
      const file = await signStatement(statement, signer);
      const path = writeApprovalFile(opts.out, file);
      const id = approvalId(statement);
      out.info(`approval  ${path}`);
      out.info(`approves  ${name} r${revision} stage ${stage}, manifest ${compiled.hash}`);
      out.info(`signed    ${approver} with ${signer.publicKey.fingerprint}${signer.kind === 'ssh-keygen' ? ' (ssh-keygen)' : ''}`);
      out.info(`expires   ${statement.expiresAt}`);
      out.result(id, { level: 'result', file: path, approvalId: id, plan: name, revision, stage, manifest: compiled.hash, approver, evidence, expiresAt: statement.expiresAt, key: signer.publicKey.fingerprint });
    });
}
