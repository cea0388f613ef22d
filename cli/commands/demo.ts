import type { Command } from 'commander';
import { runDemo } from '../demo/walkthrough.js';
import { contextOf, main } from '../main.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the whole workflow on an embedded database with seeded data: validate, compile, dry-run, approve, canary, full, ledger, reversal')
    .option('--dir <dir>', 'demo workspace', 'reprise-demo')
    .option('--force', 'start over in an existing workspace')
    .action(async (opts: { dir: string; force?: boolean }, cmd: Command) => {
      const { out } = contextOf(cmd);
      process.exitCode = await runDemo({
        dir: opts.dir,
        force: Boolean(opts.force),
        color: out.color,
        write: (line) => process.stdout.write(`${line}\n`),
        cli: async (args) => {
          process.exitCode = 0;
          const code = await main(['node', 'reprise', ...args]);
          process.exitCode = 0;
          return code;
        },
      });
    });
}
