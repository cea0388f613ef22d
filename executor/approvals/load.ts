/**
 * Reading what the verifier needs from disk: the trust file (only from `--trust` or
 * `REPRISE_TRUST`, never guessed from the plan's folder) and the approval files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { parseAllowedSigners, type AllowedSigners } from './allowed-signers.js';
import type { ApprovalSource } from './verify.js';

/** Default folder of approval files (`--approvals`). */
export const DEFAULT_APPROVALS_DIR = 'approvals';
export const APPROVAL_FILE_SUFFIX = '.approval.json';

/**
 * The trust file to use: `--trust` first, then `REPRISE_TRUST`. With neither, refuses
 * (TRUST_MISSING, exit 2): trust is the pipeline's configuration, and a file sitting next to the
 * plan is under review with it, so it is never picked up by default.
 */
export function resolveTrustPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const path = flag ?? (env.REPRISE_TRUST || undefined);
  if (!path) {
    throw new RepriseError('TRUST_MISSING', 'no trust file: pass --trust FILE or set REPRISE_TRUST', {
      exit: ExitCode.invalidInput,
      hint: 'the trust file (git allowed_signers format) belongs to the pipeline, not to the pull request under review; reprise never reads one from the plan\'s folder',
    });
  }
  return path;
}

/** Reads and parses a trust file (TRUST_FILE_NOT_FOUND, TRUST_FILE_INVALID; exit 2). */
export function loadTrustFile(path: string): AllowedSigners {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new RepriseError('TRUST_FILE_NOT_FOUND', `cannot read trust file ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
      exit: ExitCode.invalidInput,
      hint: 'check --trust / REPRISE_TRUST',
    });
  }
  return parseAllowedSigners(bytes, path);
}

/**
 * The approval files at `path`: every `*.approval.json` in a folder (sorted by name), or the one
 * file named. A missing folder holds no approvals (the verifier then says APPROVAL_MISSING).
 */
export function readApprovalSources(path: string = DEFAULT_APPROVALS_DIR): ApprovalSource[] {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RepriseError('APPROVALS_UNREADABLE', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { exit: ExitCode.invalidInput });
  }
  const files = isDir
    ? readdirSync(path)
        .filter((n) => n.endsWith(APPROVAL_FILE_SUFFIX))
        .sort()
        .map((n) => join(path, n))
    : [path];
  const out: ApprovalSource[] = [];
  for (const file of files) {
    try {
      if (!statSync(file).isFile()) continue;
      out.push({ file, bytes: readFileSync(file) });
    } catch (e) {
      throw new RepriseError('APPROVALS_UNREADABLE', `cannot read approval ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { exit: ExitCode.invalidInput });
    }
  }
  return out;
}
