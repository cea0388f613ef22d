/**
 * The organisation policy for a command: --policy, then REPRISE_POLICY; without either, none.
 * Never looked for beside the plan: the pipeline supplies it, not the pull request under review.
 */
import { loadPolicyFile, POLICY_ENV, type Policy } from '../compiler/policy.js';

export const POLICY_FLAGS = '--policy <file>';
export const POLICY_DESCRIPTION = `organisation policy to hold the plan to (env ${POLICY_ENV}); never read from the plan's folder`;

/** The policy file named by the flag or the environment (an empty variable counts as unset), loaded. */
export function policyOf(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Policy | undefined {
  const path = flag ?? (env[POLICY_ENV] || undefined);
  return path === undefined ? undefined : loadPolicyFile(path);
}
