/**
 * `reprise keygen`, `approve` and `verify` as a user runs them: `node bin/reprise.js …` in a
 * folder of its own, asserting stdout, stderr and the exit code. Needs the build
 * (`npx tsc -p tsconfig.build.json`, done by `npm test`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { compilePlanFile } from '../../compiler/compile.js';
import { readJsonLines, sshKeygen, tempDir, writePlan, writeReport } from './helpers.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(root, 'bin/reprise.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function reprise(cwd: string, args: string[], env: Record<string, string | undefined> = {}): Run {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, REPRISE_TRUST: undefined, NO_COLOR: '1', ...env } as NodeJS.ProcessEnv,
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  for (const f of ['dist/cli/commands/approve.js', 'dist/cli/commands/verify.js', 'dist/cli/commands/keygen.js']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.build.json)`);
  }
});

/** A workspace: plan, dry-run report, two reviewer keys (one reprise, one OpenSSH), a trust file outside the plan's folder. */
async function workspace(): Promise<{ dir: string; plan: string; hash: string; runId: string; dryRun: string; trust: string }> {
  const dir = tempDir('reprise-cli-');
  const plan = writePlan(dir);
  const compiled = await compilePlanFile(plan);
  const dryRun = writeReport(dir, { runId: compiled.runId, stage: 'dry-run', manifest: compiled.hash }).path;
  expect(reprise(dir, ['keygen', '--out', 'keys/alice.key', '--comment', 'alice']).code).toBe(0);
  sshKeygen(join(dir, 'keys'), 'bob', 'ed25519');
  const trust = join(dir, 'pipeline', 'allowed_signers');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dirname(trust), { recursive: true });
  writeFileSync(
    trust,
    [
      '# reviewers of orders plans',
      `alice@example.com namespaces="reprise" ${readFileSync(join(dir, 'keys/alice.key.pub'), 'utf8').trim()}`,
      `bob@example.com ${readFileSync(join(dir, 'keys/bob.pub'), 'utf8').trim()}`,
      '',
    ].join('\n'),
  );
  return { dir, plan, hash: compiled.hash, runId: compiled.runId, dryRun, trust };
}

describe('reprise keygen', () => {
  it('writes FILE (0600) and FILE.pub, prints the public key last, refuses to overwrite', () => {
    const dir = tempDir('reprise-cli-');
    const r = reprise(dir, ['keygen', '--out', 'ci.key', '--comment', 'ci-bot@example.com']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const pub = readFileSync(join(dir, 'ci.key.pub'), 'utf8').trim();
    expect(pub).toMatch(/^ssh-ed25519 AAAA\S+ ci-bot@example\.com$/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(pub);
    expect(statSync(join(dir, 'ci.key')).mode & 0o777).toBe(0o600);
    const again = reprise(dir, ['keygen', '--out', 'ci.key']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^error\[KEY_EXISTS\]: ci\.key already exists — /);
    expect(readFileSync(join(dir, 'ci.key.pub'), 'utf8').trim()).toBe(pub);
    const forced = reprise(dir, ['--json', 'keygen', '--out', 'ci.key', '--force']);
    expect(forced.code).toBe(0);
    const [rec] = readJsonLines(forced.stdout);
    expect(rec).toMatchObject({ level: 'result', privateKey: 'ci.key', publicKey: 'ci.key.pub' });
    expect(rec!.publicKeyLine).not.toBe(pub);
  });

  it('requires --out', () => {
    const r = reprise(tempDir(), ['keygen']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[USAGE]');
  });
});

describe('reprise approve', () => {
  it('signs a canary approval with a reprise key and prints the file and the approval id', async () => {
    const w = await workspace();
    const r = reprise(w.dir, ['approve', w.plan, '--stage', 'canary', '--key', 'keys/alice.key', '--approver', 'alice@example.com', '--evidence', w.dryRun, '--expires', '2h']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const file = 'approvals/orders-fix.r3.canary.alice-example-com.approval.json';
    expect(r.stdout).toContain(`approval  ${file}`);
    const id = r.stdout.trim().split('\n').at(-1)!;
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const written = JSON.parse(readFileSync(join(w.dir, file), 'utf8'));
    expect(written.id).toBe(id);
    expect(written.statement).toMatchObject({ kind: 'reprise/approval@1', manifest: w.hash, plan: 'orders-fix', revision: 3, stage: 'canary', approver: 'alice@example.com' });
    expect(written.statement.evidence.dryRunReport).toMatch(/^sha256:/);
    expect(Date.parse(written.statement.expiresAt) - Date.parse(written.statement.issuedAt)).toBe(2 * 3_600_000);
  });

  it('signs with an OpenSSH ed25519 key through ssh-keygen, into --out DIR', async () => {
    const w = await workspace();
    const r = reprise(w.dir, ['--json', 'approve', w.plan, '--stage', 'canary', '--key', 'keys/bob', '--approver', 'bob@example.com', '--evidence', w.dryRun, '--out', 'signed']);
    expect(r.code).toBe(0);
    const [rec] = readJsonLines(r.stdout);
    expect(rec).toMatchObject({ level: 'result', file: 'signed/orders-fix.r3.canary.bob-example-com.approval.json', stage: 'canary', manifest: w.hash });
  });

  it('refuses (exit 2) a canary approval without the dry-run report, or with the wrong report', async () => {
    const w = await workspace();
    const base = ['approve', w.plan, '--key', 'keys/alice.key', '--approver', 'alice@example.com'];
    let r = reprise(w.dir, [...base, '--stage', 'canary']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^error\[EVIDENCE_REQUIRED\]/)]);
    const canary = writeReport(w.dir, { runId: w.runId, stage: 'canary', manifest: w.hash }).path;
    r = reprise(w.dir, [...base, '--stage', 'canary', '--evidence', canary]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^error\[EVIDENCE_WRONG_STAGE\]/)]);
    r = reprise(w.dir, [...base, '--stage', 'full', '--evidence', w.dryRun]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^error\[EVIDENCE_WRONG_STAGE\]/)]);
    const other = writeReport(w.dir, { runId: 'orders-fix.r3.00000000', stage: 'dry-run', manifest: `sha256:${'0'.repeat(64)}` }).path;
    r = reprise(w.dir, [...base, '--stage', 'canary', '--evidence', other]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^error\[EVIDENCE_WRONG_MANIFEST\]/)]);
    expect(existsSync(join(w.dir, 'approvals'))).toBe(false);
  });

  it('refuses a tampered report (exit 3)', async () => {
    const w = await workspace();
    const body = JSON.parse(readFileSync(w.dryRun, 'utf8'));
    body.counts.items = 1;
    writeFileSync(w.dryRun, JSON.stringify(body));
    const r = reprise(w.dir, ['approve', w.plan, '--stage', 'canary', '--key', 'keys/alice.key', '--approver', 'alice@example.com', '--evidence', w.dryRun]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^error\[REPORT_TAMPERED\]/);
  });

  it('refuses the author, a non-ed25519 key, a bad stage and a bad --expires (exit 2)', async () => {
    const w = await workspace();
    const ok = ['approve', w.plan, '--stage', 'canary', '--evidence', w.dryRun];
    let r = reprise(w.dir, [...ok, '--key', 'keys/alice.key', '--approver', 'Dave@Example.com']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^error\[APPROVAL_BY_AUTHOR\]/)]);
    sshKeygen(join(w.dir, 'keys'), 'rsa', 'rsa');
    r = reprise(w.dir, [...ok, '--key', 'keys/rsa', '--approver', 'carol@example.com']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^error\[KEY_UNSUPPORTED\]: keys\/rsa is a key of type ssh-rsa/)]);
    r = reprise(w.dir, ['approve', w.plan, '--stage', 'dry-run', '--key', 'keys/alice.key', '--approver', 'alice@example.com']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringContaining('a dry-run needs no approval')]);
    r = reprise(w.dir, [...ok, '--key', 'keys/alice.key', '--approver', 'alice@example.com', '--expires', 'soon']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^error\[USAGE\]: --expires/)]);
  });
});

describe('reprise verify', () => {
  it('refuses without a trust file, and never reads one from the plan\'s folder', async () => {
    const w = await workspace();
    writeFileSync(join(w.dir, 'plans', 'allowed_signers'), readFileSync(w.trust));
    writeFileSync(join(w.dir, 'allowed_signers'), readFileSync(w.trust));
    const r = reprise(w.dir, ['verify', w.plan, '--stage', 'canary']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[TRUST_MISSING\]: no trust file: pass --trust FILE or set REPRISE_TRUST/);
  });

  it('prints a table and exits 0 with enough valid approvals; trust from REPRISE_TRUST', async () => {
    const w = await workspace();
    expect(reprise(w.dir, ['approve', w.plan, '--stage', 'canary', '--key', 'keys/alice.key', '--approver', 'alice@example.com', '--evidence', w.dryRun]).code).toBe(0);
    const r = reprise(w.dir, ['verify', w.plan, '--stage', 'canary', '--evidence', w.dryRun], { REPRISE_TRUST: w.trust });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^APPROVAL\s+RESULT\s+APPROVER\s+REASON$/);
    expect(lines[1]).toMatch(/^approvals\/orders-fix\.r3\.canary\.alice-example-com\.approval\.json\s+accepted\s+alice@example\.com\s+signed with SHA256:/);
    expect(lines.at(-1)).toBe('stage canary approved by 1 distinct approver (alice@example.com); 1 required');
  });

  it('full: one approver of two is refused (exit 3), two distinct approvers pass; --json is one object per line', async () => {
    const w = await workspace();
    const canary = writeReport(w.dir, { runId: w.runId, stage: 'canary', manifest: w.hash }).path;
    const sign = (key: string, who: string): Run => reprise(w.dir, ['approve', w.plan, '--stage', 'full', '--key', key, '--approver', who, '--evidence', canary]);
    expect(sign('keys/alice.key', 'alice@example.com').code).toBe(0);
    let r = reprise(w.dir, ['verify', w.plan, '--stage', 'full', '--trust', w.trust, '--evidence', canary]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/alice-example-com\.approval\.json\s+accepted/);
    expect(r.stderr).toMatch(/^error\[APPROVALS_INSUFFICIENT\]: stage full needs 2 distinct approvers; 1 valid \(alice@example\.com\), 0 refused/);
    expect(sign('keys/bob', 'bob@example.com').code).toBe(0);
    r = reprise(w.dir, ['--json', 'verify', w.plan, '--stage', 'full', '--trust', w.trust, '--evidence', canary]);
    expect(r.code).toBe(0);
    const recs = readJsonLines(r.stdout);
    expect(recs.filter((x) => x.level === 'approval').map((x) => [x.approver, x.status])).toEqual([
      ['alice@example.com', 'accepted'],
      ['bob@example.com', 'accepted'],
    ]);
    expect(recs.at(-1)).toMatchObject({ level: 'result', ok: true, stage: 'full', min: 2, distinctPrincipals: 2, evidenceChecked: true });
  });

  it('refuses (exit 3) approvals of a plan whose handler changed after approval, naming the reason per file', async () => {
    const w = await workspace();
    expect(reprise(w.dir, ['approve', w.plan, '--stage', 'canary', '--key', 'keys/alice.key', '--approver', 'alice@example.com', '--evidence', w.dryRun]).code).toBe(0);
    writeFileSync(join(w.dir, 'plans', 'orders-fix.handler.ts'), 'export default async function handler() { /* changed */ }\n');
    const r = reprise(w.dir, ['--json', 'verify', w.plan, '--stage', 'canary', '--trust', w.trust]);
    expect(r.code).toBe(3);
    const recs = readJsonLines(r.stdout);
    expect(recs[0]).toMatchObject({ level: 'approval', status: 'refused', code: 'APPROVAL_WRONG_MANIFEST' });
    expect(recs.at(-1)).toMatchObject({ level: 'error', code: 'APPROVAL_WRONG_MANIFEST' });
    expect(r.stderr).toContain('warning'); // evidence not checked without --evidence
    expect(r.stderr).toMatch(/error\[APPROVAL_WRONG_MANIFEST\]: .*— the plan, its handler or an effect module changed after approval/);
  });

  it('refuses with APPROVAL_MISSING when there is none, and rejects garbage files without crashing', async () => {
    const w = await workspace();
    let r = reprise(w.dir, ['verify', w.plan, '--stage', 'canary', '--trust', w.trust, '--evidence', w.dryRun]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^error\[APPROVAL_MISSING\]/);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(w.dir, 'approvals'));
    writeFileSync(join(w.dir, 'approvals', 'junk.approval.json'), Buffer.from([0, 1, 2, 0xff, 0x7b]));
    r = reprise(w.dir, ['verify', w.plan, '--stage', 'canary', '--trust', w.trust, '--evidence', w.dryRun]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/junk\.approval\.json\s+refused\s+-\s+APPROVAL_INVALID/);
    expect(r.stderr).toMatch(/^error\[APPROVAL_INVALID\]/);
  });

  it('a garbage trust file is refused with its line number (exit 2)', async () => {
    const w = await workspace();
    writeFileSync(w.trust, `${readFileSync(w.trust, 'utf8')}this line is garbage\n`);
    const r = reprise(w.dir, ['verify', w.plan, '--stage', 'canary', '--trust', w.trust]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[TRUST_FILE_INVALID\]: trust file .*allowed_signers: line 4: /);
    expect(readdirSync(w.dir)).not.toContain('approvals');
  });
});
