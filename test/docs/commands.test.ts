/**
 * Every `reprise …` command shown in README.md and docs/ (fenced shell blocks) must be one the
 * CLI accepts: an existing command, its required arguments, only options it declares. The
 * commands are parsed by the real commander program with every action replaced by a no-op, so
 * nothing runs; `--help`-level validation, as a reader pasting the line would get it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError, type Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../cli/main.js';
import { shellWords } from '../support/shell.js';

const root = join(import.meta.dirname, '..', '..');

export interface ShownCommand {
  file: string;
  line: number;
  args: string[];
}


/** The `reprise` invocations of a Markdown file's shell blocks. */
export function shownCommands(file: string, text: string): ShownCommand[] {
  const found: ShownCommand[] = [];
  const lines = text.split('\n');
  let fence: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const open = /^\s*```(\w*)/.exec(raw);
    if (open) {
      fence = fence === undefined ? open[1]! : undefined;
      continue;
    }
    if (fence === undefined || !['', 'sh', 'bash', 'shell', 'console'].includes(fence)) continue;
    let line = raw;
    const start = i;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) line = line.replace(/\\\s*$/, ' ') + lines[++i]!;
    // `[--flag value]` marks an optional part: check it as if given.
    line = line.replace(/^\s*\$\s+/, '').replace(/(^|\s)#.*$/, '').replace(/\[(--[^\]]*)\]/g, '$1');
    for (const part of line.split(/&&|\|\||[|;]|\$\(|\)/)) {
      const words = shellWords(part.trim());
      while (words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) words.shift(); // FOO=bar reprise …
      if (words[0] === 'npx') words.shift();
      if (words[0] !== 'reprise') continue;
      found.push({ file, line: start + 1, args: words.slice(1) });
    }
  }
  return found;
}

function docs(): Array<{ file: string; text: string }> {
  const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const sub of ['docs/ci']) {
    try {
      files.push(...readdirSync(join(root, sub)).filter((f) => f.endsWith('.md')).map((f) => `${sub}/${f}`));
    } catch { /* absent */ }
  }
  return files.map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') }));
}

/** Parses `args` as `reprise args…` without running anything; returns the error, if any. */
export async function parseOnly(args: string[]): Promise<string | undefined> {
  const program = buildProgram();
  const silence = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined });
    if (cmd !== program) cmd.action(() => undefined);
    for (const sub of cmd.commands) silence(sub);
  };
  silence(program);
  try {
    await program.parseAsync(['node', 'reprise', ...args]);
    return undefined;
  } catch (e) {
    if (e instanceof CommanderError && ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(e.code)) return undefined;
    return (e as Error).message;
  }
}

describe('commands shown in README.md and docs/', () => {
  const all = docs().flatMap(({ file, text }) => shownCommands(file, text));

  it('finds the commands (the extractor works)', () => {
    expect(all.length).toBeGreaterThan(15);
    expect(shellWords(`a "b c" 'd e' f\\ g`)).toEqual(['a', 'b c', 'd e', 'f g']);
    expect(shellWords(`a 'b c`)).toEqual(['a', 'b c']);
    expect(shownCommands('x.md', '```sh\n$ FOO=1 npx reprise run p.yaml \\\n  --stage full [--workers 2] # why\n```\n')).toEqual([
      { file: 'x.md', line: 2, args: ['run', 'p.yaml', '--stage', 'full', '--workers', '2'] },
    ]);
  });

  it('each parses: an existing command, its arguments, only options it declares', async () => {
    const bad: string[] = [];
    for (const c of all) {
      const err = await parseOnly(c.args);
      if (err) bad.push(`${c.file}:${c.line}: reprise ${c.args.join(' ')} -> ${err}`);
    }
    expect(bad).toEqual([]);
  });

  it('a wrong command or option is caught (the check can fail)', async () => {
    expect(await parseOnly(['frobnicate'])).toMatch(/unknown command/);
    expect(await parseOnly(['validate', 'p.yaml', '--nope'])).toMatch(/unknown option/);
    expect(await parseOnly(['run', 'p.yaml', '--stage'])).toMatch(/argument missing/);
    expect(await parseOnly(['compile', 'p.yaml', '--out', 'build'])).toBeUndefined();
  });
});
