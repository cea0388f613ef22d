/**
 * Running the reprise CLI as a user does: a subprocess of the build in dist/. By default through
 * ENGINE_BIN, the CLI with the approval preflight switched off (tests of the run engine start
 * `--stage full` on fresh runs); pass `bin: BIN` for the shipped bin/reprise.js, which refuses
 * to run a stage without approvals and a go/no-go (test/approvals/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'reprise.js');
export const ENGINE_BIN = resolve(import.meta.dirname, 'reprise-engine.mjs');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Resolves with the first stdout line that satisfies `match` (JSON-parsed when possible). */
  waitFor(match: (line: string) => boolean, timeoutMs?: number): Promise<string | undefined>;
  done: Promise<CliResult>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string, bin = ENGINE_BIN): CliProcess {
  const child = spawn(process.execPath, [bin, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ match: (l: string) => boolean; resolve: (l: string | undefined) => void }> = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    partial += d.toString();
    let nl: number;
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<CliResult>((res) => {
    child.on('close', (code, signal) => {
      for (const w of waiters.splice(0)) w.resolve(undefined);
      res({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    done,
    waitFor(match, timeoutMs = 60_000) {
      return new Promise((res) => {
        const t = setTimeout(() => res(undefined), timeoutMs);
        waiters.push({ match, resolve: (l) => { clearTimeout(t); res(l); } });
      });
    },
  };
}

export async function runCli(args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string, bin = ENGINE_BIN): Promise<CliResult> {
  return startCli(args, env, cwd, bin).done;
}
