/**
 * The `reprise` command line: commander wiring only. Each command lives in cli/commands/ and
 * calls the compiler or the executor; errors are mapped to exit codes here, in one place.
 */
import { Command, CommanderError } from 'commander';
import { coerceError, ExitCode, PlanInvalidError, RepriseError } from '../compiler/errors.js';
import { version } from '../compiler/paths.js';
import { createOutput, type Output } from './output.js';
import { commands } from './commands/index.js';

export interface GlobalOptions {
  state?: string;
  json?: boolean;
}

/** What every command handler receives. */
export interface CommandContext {
  out: Output;
  globals: GlobalOptions;
}

export function buildProgram(): Command {
  const program = new Command('reprise')
    .description('Plan-as-code backfills and event replays: compile reviewed plans, run them safely.')
    .version(version, '-V, --version')
    .option('--state <url>', 'state store: postgres://…, a path or pglite:PATH (embedded), memory: (env REPRISE_STATE; default ./.reprise/state)')
    .option('--json', 'machine-readable output: one JSON object per line')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  for (const register of commands) register(program);
  for (const cmd of program.commands) cmd.exitOverride().configureOutput({ outputError: () => undefined });
  return program;
}

/** Runs the CLI; returns the exit code (never calls process.exit). */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const out = createOutput(json);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
      const message = err.message.replace(/^error: /, '');
      out.error(new RepriseError('USAGE', message, { hint: 'see reprise --help, or reprise <command> --help', exit: ExitCode.invalidInput }));
      return ExitCode.invalidInput;
    }
    if (err instanceof PlanInvalidError) {
      out.problems(err.diagnostics);
      return err.exit;
    }
    const e = coerceError(err);
    out.error(e);
    if (e.exit === ExitCode.internal && process.env.REPRISE_DEBUG) console.error(e.cause);
    return e.exit;
  }
}

/** The globals and the output for a command's action. */
export function contextOf(cmd: Command): CommandContext {
  const globals = cmd.optsWithGlobals() as GlobalOptions;
  return { out: createOutput(Boolean(globals.json)), globals };
}
