/**
 * The compiler pipeline, top to bottom: load (YAML with positions) -> validate (schema + rules,
 * and the organisation policy when one is given; every problem collected) -> normalize
 * (defaults) -> pin (sha256 of files) -> manifest (hash). The policy adds problems, never
 * content: the manifest and its hash are the same with or without it.
 */
import type { PlanFile } from '../schema/plan.types.js';
import type { Manifest, Plan } from '../schema/manifest.types.js';
import { byPosition, PlanInvalidError, type Diagnostic } from './errors.js';
import { loadYaml, type LoadedYaml } from './load.js';
import { buildManifest, canonicalJson, manifestBytes, runIdOf } from './manifest.js';
import { normalize } from './normalize.js';
import { checkPolicy, type Policy } from './policy.js';
import { checkRules } from './rules.js';
import { fsPlanSource, sha256Hex, type PlanSource } from './source.js';
import { validateAgainstSchema } from './validate-schema.js';

export interface CheckedPlan {
  source: PlanSource;
  loaded: LoadedYaml;
  diagnostics: Diagnostic[];
  /** The plan as written, when it has no problems. */
  planFile: PlanFile | undefined;
}

export interface CheckOptions {
  /** The organisation policy to hold the plan to (`--policy`); its violations are plan problems. */
  policy?: Policy | undefined;
}

/** Every problem of a plan, sorted by position. Never throws for a user mistake. */
export function checkPlan(source: PlanSource, opts: CheckOptions = {}): CheckedPlan {
  const loaded = loadYaml(source.file, source.text);
  const diagnostics = [...loaded.diagnostics];
  if (diagnostics.length === 0) {
    if (loaded.data === null || typeof loaded.data !== 'object' || Array.isArray(loaded.data)) {
      diagnostics.push({
        code: 'PLAN_NOT_A_MAPPING',
        message: `${source.file} is not a YAML mapping`,
        hint: 'a plan starts with `reprise: 1` and `name: ...`',
        at: loaded.locate([]),
      });
    } else {
      const schemaProblems = validateAgainstSchema(loaded);
      diagnostics.push(...schemaProblems);
      let ruleProblems: Diagnostic[] = [];
      try {
        ruleProblems = checkRules({ data: loaded.data as Record<string, unknown>, loaded, fileExists: (rel) => source.exists(rel) });
      } catch (e) {
        // A rule tripped over a value the schema already rejected: the schema errors say it.
        if (schemaProblems.length === 0) throw e;
      }
      diagnostics.push(...ruleProblems);
      if (opts.policy) diagnostics.push(...checkPolicy(loaded, opts.policy));
    }
  }
  diagnostics.sort(byPosition);
  const unique = diagnostics.filter((d, i) => diagnostics.findIndex((o) => o.code === d.code && o.message === d.message && o.at?.line === d.at?.line) === i);
  return { source, loaded, diagnostics: unique, planFile: unique.length === 0 ? (loaded.data as PlanFile) : undefined };
}

export interface Compiled {
  source: PlanSource;
  plan: Plan;
  manifest: Manifest;
  /** The manifest file's content (RFC 8785 canonical JSON). */
  bytes: string;
  hash: string;
  runId: string;
}

/** Compiles a plan; throws PlanInvalidError carrying every problem (policy violations included). */
export async function compileSource(source: PlanSource, opts: CheckOptions = {}): Promise<Compiled> {
  const checked = checkPlan(source, opts);
  if (!checked.planFile) throw new PlanInvalidError(source.file, checked.diagnostics);
  const plan = normalize(checked.planFile);
  const modules = [];
  for (const e of plan.sideEffects) {
    if (e.kind === 'module') modules.push({ effect: e.name, path: e.module, sha256: await source.sha256(e.module) });
  }
  const manifest = buildManifest(plan, {
    planSha256: sha256Hex(canonicalJson(checked.loaded.data)),
    handlerSha256: await source.sha256(plan.processing.handler),
    modules,
    source: plan.source ? { path: plan.source.jsonl, sha256: await source.sha256(plan.source.jsonl) } : null,
  });
  return { source, plan, manifest, bytes: manifestBytes(manifest), hash: manifest.hash, runId: runIdOf(manifest) };
}

export async function compilePlanFile(path: string, opts: CheckOptions = {}): Promise<Compiled> {
  return compileSource(fsPlanSource(path), opts);
}
