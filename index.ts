/**
 * reprise — the package users import from.
 *
 * Handlers: `export default defineHandler(async (item, ctx) => { await ctx.effects.write_invoice({...}) })`.
 * Library use: compile plans, and (through `reprise/live`) claim dedupe keys from live consumers.
 */
export { defineHandler } from './executor/handler-api.js';
export type { Handler, HandlerContext, EffectCall, EffectOutcome, EffectStatus, HandlerLogger } from './executor/handler-api.js';
export { compilePlanFile, compileSource, checkPlan } from './compiler/compile.js';
export type { Compiled, CheckedPlan, CheckOptions } from './compiler/compile.js';
export { checkPolicy, loadPolicyFile, parsePolicy } from './compiler/policy.js';
export type { Policy } from './compiler/policy.js';
export { RepriseError, ExitCode } from './compiler/errors.js';
export type { Manifest, Plan } from './schema/manifest.types.js';
export type { PlanFile } from './schema/plan.types.js';
export type { PolicyFile } from './schema/policy.types.js';
