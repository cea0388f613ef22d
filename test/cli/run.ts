/** Runs the CLI as a user does: `node bin/reprise.js …` in a subprocess (needs `npm run build`). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bin = join(root, 'bin', 'reprise.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function reprise(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): CliResult {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` before the CLI tests');
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: opts.cwd ?? root,
    env: { ...process.env, NO_COLOR: '1', REPRISE_DEBUG: '', ...opts.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON lines a --json command printed. */
export function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

export const noStackTrace = (s: string): boolean => !/\n\s+at .+\(.*:\d+:\d+\)/.test(s) && !s.includes('node:internal');
