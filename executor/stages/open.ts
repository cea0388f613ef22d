/**
 * Everything a stage needs, opened from a plan file: the compiled manifest, the plan's
 * connections, the state store (the checkpoint connection's database, or --state), the dedupe
 * store, the item source, the handler and the effect appliers. `close()` releases all of it.
 */
import { dirname, resolve } from 'node:path';
import type { Manifest, Plan } from '../../schema/manifest.types.js';
import { compileSource, type CheckOptions, type Compiled } from '../../compiler/compile.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { parseManifestBytes } from '../../compiler/manifest.js';
import type { Policy } from '../../compiler/policy.js';
import { fsPlanSource } from '../../compiler/source.js';
import { createAppliers, type Applier } from '../effects/appliers.js';
import { PostgresDedupeStore, RedisDedupeStore, type DedupeStore } from '../effects/dedupe.js';
import type { Handler } from '../handler-api.js';
import { loadHandler } from '../modules.js';
import { JsonlItemSource } from '../source/jsonl.js';
import { SelectionSource } from '../source/selection.js';
import type { ItemSource } from '../source/types.js';
import { migrate } from '../store/migrate.js';
import { StateStore } from '../store/store.js';
import { Targets } from '../targets.js';

export interface OpenedRun {
  compiled: Compiled;
  manifest: Manifest;
  plan: Plan;
  runId: string;
  planDir: string;
  targets: Targets;
  store: StateStore;
  dedupe: DedupeStore | undefined;
  /** The dedupe store is the state database (claims confirmed in the chunk commit). */
  dedupeInStateDb: boolean;
  source: ItemSource;
  handler: Handler;
  appliers: Map<string, Applier>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** A plan file, or a compiled `.manifest.json` beside which the plan is found (`--plan`). */
  plan: string;
  stateUrl: string;
  env?: NodeJS.ProcessEnv;
  /** Skip loading the handler (control commands, reversal). */
  withoutHandler?: boolean;
  /** The organisation policy the plan must meet; checked while compiling, before any connection. */
  policy?: Policy | undefined;
}

/** Compiles the plan now, from the files on disk; with a manifest file, checks it is exactly that. */
export async function compileForRun(path: string, opts: CheckOptions = {}): Promise<Compiled> {
  if (path.endsWith('.manifest.json')) {
    const { readFileSync } = await import('node:fs');
    const manifest = parseManifestBytes(readFileSync(path, 'utf8'), path);
    throw new RepriseError('MANIFEST_NEEDS_PLAN', `${path} is a manifest (${manifest.hash}); reprise runs the plan file and checks it compiles to an approved hash`, {
      exit: ExitCode.invalidInput,
      hint: `pass the plan file (plans/${manifest.plan.name}.yaml); approvals bind the manifest hash it compiles to`,
    });
  }
  return compileSource(fsPlanSource(path), opts);
}

export async function openRun(opts: OpenOptions): Promise<OpenedRun> {
  const compiled = await compileForRun(opts.plan, { policy: opts.policy });
  const { manifest, plan, runId } = compiled;
  const planDir = compiled.source.dir ?? dirname(resolve(opts.plan));
  const targets = new Targets(plan, opts.env ?? process.env);
  const closers: Array<() => Promise<unknown>> = [() => targets.close()];
  try {
    const store = plan.checkpoint.connection
      ? await StateStore.on(await targets.sql(plan.checkpoint.connection))
      : await StateStore.open(opts.stateUrl);
    closers.unshift(() => store.close());

    let dedupe: DedupeStore | undefined;
    let dedupeInStateDb = false;
    if (plan.dedupe) {
      if (plan.dedupe.store === 'redis') {
        dedupe = new RedisDedupeStore(await targets.redis(plan.dedupe.connection), plan.dedupe.namespace, plan.dedupe.ttl, targets.describe(plan.dedupe.connection));
      } else {
        const db = await targets.sql(plan.dedupe.connection);
        dedupeInStateDb = plan.checkpoint.connection === plan.dedupe.connection;
        if (!dedupeInStateDb) await migrate(db);
        dedupe = new PostgresDedupeStore(db, plan.dedupe.namespace, plan.dedupe.ttl);
      }
    }

    const source: ItemSource = plan.selection
      ? new SelectionSource(await targets.sql(plan.selection.connection), plan.selection)
      : new JsonlItemSource(resolve(planDir, plan.source!.jsonl), plan.source!);

    const handler: Handler = opts.withoutHandler ? async () => undefined : await loadHandler(resolve(planDir, plan.processing.handler));
    const appliers = createAppliers(plan, targets, planDir, opts.env ?? process.env);
    if (!opts.withoutHandler) for (const a of appliers.values()) await a.preload?.();
    return {
      compiled,
      manifest,
      plan,
      runId,
      planDir,
      targets,
      store,
      dedupe,
      dedupeInStateDb,
      source,
      handler,
      appliers,
      async close() {
        for (const c of closers) await c().catch(() => undefined);
      },
    };
  } catch (e) {
    for (const c of closers) await c().catch(() => undefined);
    throw e;
  }
}
