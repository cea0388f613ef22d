/**
 * `reprise k8s <plan> --workers N`: prints the Kubernetes objects that run the plan's full stage
 * on N pods at once — an Indexed Job (completionMode: Indexed, parallelism = completions = N)
 * whose pods each run `reprise run <plan> --stage full`, joining one run through the PostgreSQL
 * state store — and the ConfigMaps it mounts: the plan with exactly the files its manifest pins,
 * and the approvals of this manifest. Connection URLs and the state store come from Secrets the
 * operator creates; nothing secret is printed. See docs/scale-out.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, posix, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { Plan } from '../../schema/manifest.types.js';
import { compilePlanFile, type Compiled } from '../../compiler/compile.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { version } from '../../compiler/paths.js';
import { contextOf } from '../main.js';

export interface K8sOptions {
  /** Pods (Job parallelism and completions). */
  workers: number;
  /** Workers per pod (`reprise run --workers`). @defaultValue 1 */
  podWorkers?: number;
  /** @defaultValue `reprise:<version>` */
  image?: string;
  /** Omitted: the namespace of kubectl's context. */
  namespace?: string;
  /** Secret holding `REPRISE_STATE` (a postgres:// URL), unless the plan keeps its state on its checkpoint connection. @defaultValue 'reprise-state' */
  stateSecret?: string;
  /** Secret holding one key per environment variable the plan names. @defaultValue `reprise-<plan name>` */
  envSecret?: string;
  /** ConfigMap holding the pipeline's trust file under the key `allowed_signers`. @defaultValue 'reprise-trust' */
  trustConfigMap?: string;
  /** ConfigMap holding the organisation policy under the key `reprise.policy.yaml`; none: no policy. */
  policyConfigMap?: string;
  /** Approval files of the manifest, by file name. */
  approvals: Record<string, string>;
  /** Prometheus metrics port of each pod. @defaultValue 9464 */
  metricsPort?: number;
}

/** Where the pods find things. The image's working directory is /reprise, with reprise in /reprise/node_modules. */
export const POD_PATHS = { plan: '/reprise/plan', approvals: '/reprise/approvals', trust: '/reprise/trust', policy: '/reprise/policy', reports: '/reprise/reports' } as const;

/** ConfigMaps hold at most 1 MiB. */
const CONFIGMAP_LIMIT = 1024 * 1024;

/** Every environment variable the plan names (`{ env: NAME }` anywhere: connections, URLs, the alert webhook), sorted. */
export function planEnvVars(plan: Plan): string[] {
  const found = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const env = (v as { env?: unknown }).env;
      if (typeof env === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) found.add(env);
      for (const x of Object.values(v)) walk(x);
    }
  };
  walk(plan);
  return [...found].sort();
}

/** The job's name: `reprise-<plan>-r<rev>-<hash8>`, cut to 52 characters (an Indexed Job's pods are `<job>-<index>-<random>`). */
export function jobName(compiled: Pick<Compiled, 'plan' | 'hash'>): string {
  const suffix = `-r${compiled.plan.revision}-${compiled.hash.slice('sha256:'.length, 'sha256:'.length + 8)}`;
  const name = compiled.plan.name.slice(0, 52 - 'reprise-'.length - suffix.length).replace(/-+$/, '');
  return `reprise-${name}${suffix}`;
}

/** A ConfigMap key for a relative path (keys allow `[-._a-zA-Z0-9]`). */
function keyOf(path: string): string {
  return path.split('/').join('__').replace(/[^-._a-zA-Z0-9]/g, '_');
}

/** The files the manifest pins, relative to the plan's folder: the plan, its handler, module effects, a JSONL source (and the folder's package.json). */
export function planFiles(compiled: Compiled, planPath: string): Array<{ path: string; content: string }> {
  const dir = compiled.source.dir ?? resolve(planPath, '..');
  const rel = [basename(planPath), compiled.plan.processing.handler, ...compiled.plan.sideEffects.flatMap((e) => (e.kind === 'module' ? [e.module] : []))];
  if (compiled.plan.source) rel.push(compiled.plan.source.jsonl);
  const out: Array<{ path: string; content: string }> = [];
  const seen = new Set<string>();
  for (const r of rel) {
    const abs = resolve(dir, r);
    const inDir = relative(dir, abs).split(sep).join('/');
    if (inDir.startsWith('../') || inDir === '..' || posix.isAbsolute(inDir)) {
      throw new RepriseError('K8S_FILE_OUTSIDE_PLAN_DIR', `${r} is outside the plan's folder; a ConfigMap can only hold files beside or below the plan`, {
        exit: ExitCode.invalidInput,
        hint: 'move the file under the plan\'s folder, or bake it into the image and run without reprise k8s',
      });
    }
    if (seen.has(inDir)) continue;
    seen.add(inDir);
    out.push({ path: inDir, content: readFileSync(abs, 'utf8') });
  }
  try {
    out.push({ path: 'package.json', content: readFileSync(join(dir, 'package.json'), 'utf8') });
  } catch {
    // none: the handler's module type comes from the image's package.json
  }
  return out;
}

/** The objects, as YAML documents: the plan ConfigMap, the approvals ConfigMap, the Indexed Job. */
export function k8sManifests(compiled: Compiled, planPath: string, o: K8sOptions): string {
  if (!Number.isInteger(o.workers) || o.workers < 1) throw new RepriseError('USAGE', `--workers must be a whole number of pods from 1, got ${o.workers}`);
  const podWorkers = o.podWorkers ?? 1;
  const name = jobName(compiled);
  const plan = compiled.plan;
  const files = planFiles(compiled, planPath);
  const size = files.reduce((n, f) => n + Buffer.byteLength(f.content) + f.path.length, 0);
  if (size > CONFIGMAP_LIMIT) {
    throw new RepriseError('K8S_CONFIGMAP_TOO_LARGE', `the plan's files take ${size} bytes; a ConfigMap holds at most 1 MiB`, {
      exit: ExitCode.invalidInput,
      hint: 'a large JSONL source belongs in the image or a volume; mount it at the same path relative to the plan',
    });
  }
  const labels = {
    'app.kubernetes.io/name': 'reprise',
    'app.kubernetes.io/component': 'backfill-worker',
    'app.kubernetes.io/instance': name,
    'reprise.dev/plan': plan.name,
    'reprise.dev/revision': String(plan.revision),
  };
  const annotations = { 'reprise.dev/run': compiled.runId, 'reprise.dev/manifest': compiled.hash };
  const meta = (n: string): Record<string, unknown> => ({ name: n, ...(o.namespace ? { namespace: o.namespace } : {}), labels, annotations });
  const envSecret = o.envSecret ?? `reprise-${plan.name}`.slice(0, 63);
  const stateInStore = plan.checkpoint.connection === null;
  const metricsPort = o.metricsPort ?? 9464;

  const planMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(`${name}-plan`), data: Object.fromEntries(files.map((f) => [keyOf(f.path), f.content])) };
  const approvalsMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(`${name}-approvals`), data: o.approvals };
  const env = [
    ...(stateInStore ? [{ name: 'REPRISE_STATE', valueFrom: { secretKeyRef: { name: o.stateSecret ?? 'reprise-state', key: 'REPRISE_STATE' } } }] : []),
    ...planEnvVars(plan).map((v) => ({ name: v, valueFrom: { secretKeyRef: { name: envSecret, key: v } } })),
    { name: 'REPRISE_TRUST', value: `${POD_PATHS.trust}/allowed_signers` },
    ...(o.policyConfigMap ? [{ name: 'REPRISE_POLICY', value: `${POD_PATHS.policy}/reprise.policy.yaml` }] : []),
    // Who acts in the run's events: the pod (its name is <job>-<index>-<random>).
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'REPRISE_ACTOR', value: 'k8s:$(POD_NAME)' },
  ];
  const planFile = basename(planPath);
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(name),
    spec: {
      completionMode: 'Indexed',
      completions: o.workers,
      parallelism: o.workers,
      // A pod that dies (node lost, OOM) is replaced; its chunk's lease expires and another worker takes it.
      backoffLimit: Math.max(6, o.workers * 2),
      podFailurePolicy: {
        rules: [
          // Exit 2 (invalid input), 3 (refused: approvals, go/no-go), 4 (stopped: abort, error budget,
          // fail-closed), 5 (canary validation): retrying the same pod cannot help; a person decides.
          { action: 'FailJob', onExitCodes: { containerName: 'reprise', operator: 'In', values: [2, 3, 4, 5] } },
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
        ],
      },
      template: {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: 'Never',
          // SIGTERM stops a worker cleanly: in-flight items finish or roll back with their chunk.
          terminationGracePeriodSeconds: Math.max(60, Math.ceil(plan.processing.timeoutMs / 1000) + 30),
          containers: [
            {
              name: 'reprise',
              image: o.image ?? `reprise:${version}`,
              workingDir: '/reprise',
              args: [
                '--json', 'run', `${POD_PATHS.plan}/${planFile}`, '--stage', 'full', '--workers', String(podWorkers),
                '--approvals', POD_PATHS.approvals, '--reports', POD_PATHS.reports, '--metrics-port', String(metricsPort),
              ],
              env,
              ports: [{ name: 'metrics', containerPort: metricsPort }],
              volumeMounts: [
                { name: 'plan', mountPath: POD_PATHS.plan, readOnly: true },
                { name: 'approvals', mountPath: POD_PATHS.approvals, readOnly: true },
                { name: 'trust', mountPath: POD_PATHS.trust, readOnly: true },
                ...(o.policyConfigMap ? [{ name: 'policy', mountPath: POD_PATHS.policy, readOnly: true }] : []),
                { name: 'reports', mountPath: POD_PATHS.reports },
              ],
            },
          ],
          volumes: [
            { name: 'plan', configMap: { name: `${name}-plan`, items: files.map((f) => ({ key: keyOf(f.path), path: f.path })) } },
            { name: 'approvals', configMap: { name: `${name}-approvals` } },
            { name: 'trust', configMap: { name: o.trustConfigMap ?? 'reprise-trust', items: [{ key: 'allowed_signers', path: 'allowed_signers' }] } },
            ...(o.policyConfigMap ? [{ name: 'policy', configMap: { name: o.policyConfigMap, items: [{ key: 'reprise.policy.yaml', path: 'reprise.policy.yaml' }] } }] : []),
            { name: 'reports', emptyDir: {} },
          ],
        },
      },
    },
  };
  const header = [
    `# reprise k8s — run ${compiled.runId} (${compiled.hash})`,
    `# ${o.workers} pod(s) × ${podWorkers} worker(s), one run: they lease chunks through the state store and share its rate bucket.`,
    `# Needs: Secret ${stateInStore ? `${o.stateSecret ?? 'reprise-state'} (key REPRISE_STATE, a postgres:// URL) and ` : ''}${envSecret} (keys: ${planEnvVars(plan).join(', ') || 'none'}),`,
    `# ConfigMap ${o.trustConfigMap ?? 'reprise-trust'} (key allowed_signers)${o.policyConfigMap ? `, ConfigMap ${o.policyConfigMap} (key reprise.policy.yaml)` : ''}. Apply: reprise k8s … | kubectl apply -f -`,
  ].join('\n');
  return `${header}\n${[planMap, approvalsMap, job].map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n')}`;
}

/** Approval files in `dir` that name this manifest, by file name. */
export function approvalsOf(dir: string, hash: string): Record<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.approval.json')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  const out: Record<string, string> = {};
  for (const n of names) {
    const content = readFileSync(join(dir, n), 'utf8');
    if (content.includes(hash)) out[keyOf(n)] = content;
  }
  return out;
}

export function registerK8s(program: Command): void {
  program
    .command('k8s')
    .description('print a Kubernetes Indexed Job (and its ConfigMaps) running the full stage on N pods that join one run')
    .argument('<plan>', 'plan file')
    .requiredOption('--workers <n>', 'pods (Job parallelism and completions)')
    .option('--pod-workers <k>', 'workers in each pod (reprise run --workers)', '1')
    .option('--image <image>', 'container image with reprise installed in /reprise', `reprise:${version}`)
    .option('--namespace <ns>', 'namespace of the objects (default: kubectl\'s context)')
    .option('--state-secret <name>', 'Secret with REPRISE_STATE (postgres://…), when the plan has no checkpoint connection', 'reprise-state')
    .option('--env-secret <name>', 'Secret with one key per environment variable the plan names (default: reprise-<plan>)')
    .option('--trust-configmap <name>', 'ConfigMap with the trust file under the key allowed_signers', 'reprise-trust')
    .option('--policy-configmap <name>', 'ConfigMap with the organisation policy under the key reprise.policy.yaml (the pods run with REPRISE_POLICY)')
    .option('--approvals <dir>', 'approval files to mount (those naming this manifest)', 'approvals')
    .action(async (planPath: string, opts: { workers: string; podWorkers: string; image: string; namespace?: string; stateSecret: string; envSecret?: string; trustConfigmap: string; policyConfigmap?: string; approvals: string }, cmd: Command) => {
      const { out } = contextOf(cmd);
      const workers = Number(opts.workers);
      const podWorkers = Number(opts.podWorkers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 1000) throw new RepriseError('USAGE', `--workers must be a whole number of pods from 1 to 1000, got ${opts.workers}`);
      if (!Number.isInteger(podWorkers) || podWorkers < 1 || podWorkers > 256) throw new RepriseError('USAGE', `--pod-workers must be a whole number from 1 to 256, got ${opts.podWorkers}`);
      const compiled = await compilePlanFile(planPath);
      const approvals = approvalsOf(opts.approvals, compiled.hash);
      if (!Object.keys(approvals).length) out.warn(`no approval of ${compiled.hash} in ${opts.approvals}: the pods will refuse to run (exit 3) until the approvals ConfigMap holds them`);
      process.stdout.write(k8sManifests(compiled, planPath, {
        workers, podWorkers, image: opts.image, namespace: opts.namespace, stateSecret: opts.stateSecret, envSecret: opts.envSecret, trustConfigMap: opts.trustConfigmap, policyConfigMap: opts.policyConfigmap, approvals,
      }));
    });
}
