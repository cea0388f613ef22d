/** Resolving the state store for a command: --state, then REPRISE_STATE, then ./.reprise/state. */
import type { GlobalOptions } from './main.js';

export const DEFAULT_STATE = './.reprise/state';

export function stateUrlOf(globals: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  return globals.state ?? env.REPRISE_STATE ?? DEFAULT_STATE;
}
