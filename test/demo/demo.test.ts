/**
 * `reprise demo` as a newcomer runs it: a subprocess of the shipped CLI in a fresh folder. It
 * must walk every step, end with exit 0, and its closing figures must say what the backfill did.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'reprise-demo-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('reprise demo', () => {
  it('walks validate, compile, dry-run, approvals, canary, full, ledger and a reversal, and ends well', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.REPRISE_STATE;
    delete env.REPRISE_TRUST;
    const r = await runCli(['demo', '--dir', 'workspace'], env, dir, BIN);
    expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/); // no stack trace
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = r.stdout;
    for (let i = 1; i <= 12; i++) expect(out).toContain(`━━ ${i}/12 `);
    for (const cmd of ['validate', 'compile', 'dry-run', 'keygen', 'approve', 'run', 'ledger', 'reverse']) expect(out).toMatch(new RegExp(`\\$ reprise (--state \\S+ )?${cmd} `));
    expect(out).toMatch(/THROWAWAY/);
    expect(out).toMatch(/runbook\s+workspace\/build\/order-confirmations-replay\.r1\.runbook\.md/);
    // The ledger summary: every order confirmed, the live consumer's 30 skipped, no email sent.
    expect(out).toMatch(/email_confirmation\s+suppress\s+suppressed\s+2304/);
    expect(out).toMatch(/mark_confirmed\s+replay\s+applied\s+2304/);
    expect(out).toMatch(/publish_order_confirmed\s+dedupe\s+applied\s+2274/);
    expect(out).toMatch(/publish_order_confirmed\s+dedupe\s+skipped-dup\s+30/);
    expect(out).toContain('orders still unconfirmed in the window  1 (the one reversed on purpose)');
    expect(out).toMatch(/duplicated keys: 0/);
    const ws = join(dir, 'workspace');
    expect(existsSync(join(ws, 'build', 'order-confirmations-replay.r1.manifest.json'))).toBe(true);
    const reports = readdirSync(join(ws, 'reports'));
    for (const stage of ['dry-run', 'canary', 'full', 'reverse']) {
      expect(reports.some((f) => f.endsWith(`.${stage}.report.json`)), stage).toBe(true);
      expect(reports.some((f) => f.endsWith(`.${stage}.report.md`)), stage).toBe(true);
    }
    expect(readdirSync(join(ws, 'approvals')).sort()).toEqual([
      'order-confirmations-replay.r1.canary.riley-shop-example.approval.json',
      'order-confirmations-replay.r1.full.riley-shop-example.approval.json',
      'order-confirmations-replay.r1.reverse.riley-shop-example.approval.json',
    ]);

    // A second demo in the same folder refuses instead of mixing two runs; --force starts over.
    const again = await runCli(['demo', '--dir', 'workspace'], env, dir, BIN);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^error\[DEMO_DIR_EXISTS\]: .* — pass --force/m);
  });
});
