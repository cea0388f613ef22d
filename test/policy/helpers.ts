/** Shared helpers of the organisation policy tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPlan } from '../../compiler/compile.js';
import type { Diagnostic } from '../../compiler/errors.js';
import { parsePolicy, type Policy } from '../../compiler/policy.js';
import { fsPlanSource } from '../../compiler/source.js';
import { textSource } from '../compiler/helpers.js';

export const root = join(import.meta.dirname, '..', '..');
export const fixtures = join(import.meta.dirname, 'fixtures');
export const fixture = (name: string): string => join(fixtures, name);
export const read = (path: string): string => readFileSync(path, 'utf8');

/** `CODE line:col` of each problem, in the order reported. */
export const positions = (list: Diagnostic[]): string[] => list.map((d) => `${d.code} ${d.at?.line}:${d.at?.col}`);

/** A policy from its text; throws when the text has problems (tests of valid policies). */
export function policyFrom(text: string, file = 'inline.policy.yaml'): Policy {
  const { policy, diagnostics } = parsePolicy(file, text);
  if (!policy) throw new Error(`policy has problems: ${diagnostics.map((d) => d.message).join('; ')}`);
  return policy;
}

/** Every problem of a fixture plan held to `policy`. */
export function problemsOf(planFixture: string, policy: Policy | undefined): Diagnostic[] {
  return checkPlan(fsPlanSource(fixture(planFixture)), { policy }).diagnostics;
}

/** Every problem of a plan given as text (its files read from the fixtures) held to `policy`. */
export function problemsOfText(text: string, policy: Policy | undefined): Diagnostic[] {
  return checkPlan(textSource(text, fixtures), { policy }).diagnostics;
}
