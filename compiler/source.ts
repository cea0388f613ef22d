/**
 * Where a plan and the files it names are read from: the working tree, or a git revision
 * (`reprise diff main:plans/x.yaml plans/x.yaml`). Paths inside a plan are relative to the plan.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, posix, relative, resolve } from 'node:path';
import { ExitCode, RepriseError } from './errors.js';

export interface PlanSource {
  /** Name used in messages (`plans/x.yaml`, `main:plans/x.yaml`). */
  file: string;
  text: string;
  /** Directory of the plan on disk (working tree only); handlers are loaded from here. */
  dir: string | undefined;
  exists(rel: string): boolean;
  /** sha256 hex of a file relative to the plan. */
  sha256(rel: string): Promise<string>;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function fsPlanSource(path: string, displayName?: string): PlanSource {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RepriseError('PLAN_NOT_FOUND', `cannot read plan ${path}${code ? ` (${code})` : ''}`, {
      hint: 'check the path; plans usually live in plans/',
      exit: ExitCode.invalidInput,
    });
  }
  const dir = dirname(resolve(path));
  const abs = (rel: string): string => resolve(dir, rel);
  return {
    file: displayName ?? path,
    text,
    dir,
    exists: (rel) => existsSync(abs(rel)) && statSync(abs(rel)).isFile(),
    sha256: (rel) =>
      new Promise((ok, fail) => {
        const h = createHash('sha256');
        createReadStream(abs(rel))
          .on('data', (c) => h.update(c))
          .on('error', fail)
          .on('end', () => ok(h.digest('hex')));
      }),
  };
}

/** `REF:PATH` with a git revision before the colon (and not a Windows drive letter). */
export function parseGitSpec(spec: string): { ref: string; path: string } | undefined {
  const m = /^([^:]{2,}):(.+)$/.exec(spec);
  if (!m || existsSync(spec)) return undefined;
  return { ref: m[1]!, path: m[2]! };
}

export function gitPlanSource(ref: string, path: string, cwd = process.cwd()): PlanSource {
  let top: string;
  let prefix: string;
  try {
    top = git(['rev-parse', '--show-toplevel'], cwd).toString('utf8').trim();
    prefix = git(['rev-parse', '--show-prefix'], cwd).toString('utf8').trim();
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? '').trim().split('\n')[0];
    throw new RepriseError('GIT_UNAVAILABLE', `cannot read ${ref}:${path}: ${stderr || (e as Error).message}`, {
      hint: 'REF:PATH reads a plan from git; run it inside a git working tree (with git installed), or pass a file path',
      exit: ExitCode.invalidInput,
    });
  }
  // The prefix (cwd relative to the top, as git sees it) avoids comparing paths that differ only by symlinks.
  const inRepo = isAbsolute(path)
    ? posix.normalize(relative(realpathSync(top), realpathOr(path)).split('\\').join('/'))
    : posix.normalize(posix.join(prefix, path.split('\\').join('/')));
  const show = (p: string): Buffer | undefined => {
    try {
      return git(['show', `${ref}:${p}`], top);
    } catch {
      return undefined;
    }
  };
  const text = show(inRepo);
  if (text === undefined) {
    throw new RepriseError('PLAN_NOT_FOUND', `cannot read ${path} at git revision ${ref}`, {
      hint: 'check the revision and the path (REF:PATH, path relative to the current directory)',
    });
  }
  const dir = posix.dirname(inRepo);
  const at = (rel: string): string => posix.normalize(posix.join(dir, rel));
  return {
    file: `${ref}:${path}`,
    text: text.toString('utf8'),
    dir: undefined,
    exists: (rel) => show(at(rel)) !== undefined,
    sha256: async (rel) => {
      const buf = show(at(rel));
      if (!buf) throw new RepriseError('FILE_NOT_FOUND', `${rel} does not exist at ${ref}`);
      return sha256Hex(buf);
    },
  };
}

/** The real path of a file that may exist only at a git revision (its directory usually exists). */
function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    try {
      return resolve(realpathSync(dirname(p)), basename(p));
    } catch {
      return p;
    }
  }
}

function git(args: string[], cwd: string): Buffer {
  return execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
}
