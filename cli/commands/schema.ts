import { Argument, type Command } from 'commander';
import { SCHEMA_NAMES, schemaText } from '../../compiler/schemas.js';
import { contextOf } from '../main.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print a JSON Schema reprise ships, for editors and tools (`# yaml-language-server: $schema=…` in a plan)')
    .addArgument(new Argument('[name]', 'which schema').choices(SCHEMA_NAMES).default('plan'))
    .action((name: string, _opts, cmd: Command) => {
      const { out } = contextOf(cmd);
      const text = schemaText(name);
      if (out.json) out.record(JSON.parse(text) as Record<string, unknown>);
      else process.stdout.write(text);
    });
}
