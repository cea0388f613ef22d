/**
 * `reprise k8s` as a user runs it (the shipped bin, a subprocess): the output is valid YAML
 * holding an Indexed Job whose N pods each run the full stage of this plan, with every variable
 * the plan names from a Secret, and ConfigMaps from which the plan compiles to the same manifest.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { compilePlanFile } from '../../compiler/compile.js';
import { BIN, runCli } from '../support/cli.js';
import { writePlan } from '../support/plans.js';

function plan() {
  return writePlan('k8s-demo', {
    reprise: 1,
    name: 'k8s-demo',
    revision: 3,
    owner: 'platform',
    author: 'tester@example.com',
    reason: 'Scale-out manifest test.',
    connections: { db: { env: 'DEMO_DATABASE_URL' } },
    selection: {
      connection: 'db',
      query: 'select id from items where created_at >= :window_start and created_at < :window_end',
      key: 'id',
      window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' },
      expect: { min: 10, max: 1000 },
    },
    processing: { handler: './handler.ts' },
    sideEffects: [
      { name: 'sink', kind: 'module', module: './effects/sink.ts', export: 'sink', args: ['id'], backfill: 'replay', live: 'none' },
      { name: 'hook', kind: 'http', method: 'POST', url: { env: 'HOOK_URL' }, backfill: 'suppress', live: 'apply' },
    ],
    rate: { itemsPerSecond: 50, concurrency: 2 },
    abort: { alert: { webhook: { env: 'ALERT_URL' } } },
    canary: { size: 2 },
  }, {
    'handler.ts': "import { defineHandler } from 'reprise';\nexport default defineHandler(async (row: { id: string }, ctx) => { await ctx.effects.sink({ id: row.id }); });\n",
    'effects/sink.ts': 'export async function sink(): Promise<void> {}\n',
  });
}

describe('reprise k8s', () => {
  it('prints an Indexed Job of N pods running the full stage, its Secrets wiring and ConfigMaps that compile to the same manifest', async () => {
    const p = plan();
    const compiled = await compilePlanFile(p.path);
    const approvals = join(p.dir, 'approvals');
    mkdirSync(approvals);
    writeFileSync(join(approvals, 'k8s-demo.r3.full.bob.approval.json'), JSON.stringify({ statement: { manifest: compiled.hash, stage: 'full' } }));
    writeFileSync(join(approvals, 'other.r1.full.bob.approval.json'), JSON.stringify({ statement: { manifest: `sha256:${'0'.repeat(64)}` } }));

    const res = await runCli(['k8s', p.path, '--workers', '4', '--pod-workers', '2', '--image', 'registry.example/reprise:1', '--namespace', 'backfills', '--state-secret', 'state-db', '--approvals', approvals], process.env, p.dir, BIN);
    expect(res.code, res.stderr).toBe(0);
    const docs = parseAllDocuments(res.stdout);
    expect(Array.isArray(docs) ? docs.map((d) => d.errors).flat() : ['not a stream']).toEqual([]);
    const objs = (docs as ReturnType<typeof parseAllDocuments> & unknown[]).map((d) => (d as { toJS(): any }).toJS());
    expect(objs.map((o) => o.kind)).toEqual(['ConfigMap', 'ConfigMap', 'Job']);
    for (const o of objs) expect(o.metadata.namespace).toBe('backfills');
    const [planMap, approvalsMap, job] = objs;

    expect(job.apiVersion).toBe('batch/v1');
    expect(job.metadata.name).toBe(`reprise-k8s-demo-r3-${compiled.hash.slice(7, 15)}`);
    expect(job.metadata.annotations).toMatchObject({ 'reprise.dev/run': compiled.runId, 'reprise.dev/manifest': compiled.hash });
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 4, parallelism: 4 });
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0];
    expect(c.image).toBe('registry.example/reprise:1');
    expect(c.args.slice(0, 7)).toEqual(['--json', 'run', '/reprise/plan/k8s-demo.yaml', '--stage', 'full', '--workers', '2']);
    expect(c.args).toContain('--approvals');
    // Every variable the plan names comes from the plan's Secret; the state store from its own.
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e]));
    expect(env.REPRISE_STATE.valueFrom.secretKeyRef).toEqual({ name: 'state-db', key: 'REPRISE_STATE' });
    for (const v of ['DEMO_DATABASE_URL', 'HOOK_URL', 'ALERT_URL']) expect(env[v].valueFrom.secretKeyRef, v).toEqual({ name: 'reprise-k8s-demo', key: v });
    expect(env.REPRISE_TRUST.value).toBe('/reprise/trust/allowed_signers');
    expect(JSON.stringify(objs)).not.toMatch(/postgres:\/\//);
    // Exit codes a retry cannot fix fail the job instead of restarting pods.
    expect(job.spec.podFailurePolicy.rules[0]).toMatchObject({ action: 'FailJob', onExitCodes: { containerName: 'reprise', operator: 'In', values: [2, 3, 4, 5] } });

    // The mounts point at the ConfigMaps printed, and the plan rebuilt from them compiles to the same manifest.
    const volumes = Object.fromEntries(pod.volumes.map((v: any) => [v.name, v]));
    expect(volumes.plan.configMap.name).toBe(planMap.metadata.name);
    expect(volumes.approvals.configMap.name).toBe(approvalsMap.metadata.name);
    expect(c.volumeMounts.map((m: any) => [m.name, m.mountPath])).toEqual([['plan', '/reprise/plan'], ['approvals', '/reprise/approvals'], ['trust', '/reprise/trust'], ['reports', '/reprise/reports']]);
    const rebuilt = mkdtempSync(join(tmpdir(), 'reprise-k8s-'));
    for (const item of volumes.plan.configMap.items) {
      mkdirSync(dirname(join(rebuilt, item.path)), { recursive: true });
      writeFileSync(join(rebuilt, item.path), planMap.data[item.key]);
    }
    expect(volumes.plan.configMap.items.map((i: any) => i.path).sort()).toEqual(['effects/sink.ts', 'handler.ts', 'k8s-demo.yaml', 'package.json']);
    expect((await compilePlanFile(join(rebuilt, 'k8s-demo.yaml'))).hash).toBe(compiled.hash);
    expect(Object.keys(approvalsMap.data)).toEqual(['k8s-demo.r3.full.bob.approval.json']);
  });

  it('--policy-configmap mounts the organisation policy and points REPRISE_POLICY at it; --trust-configmap names the trust ConfigMap', async () => {
    const p = plan();
    const res = await runCli(['k8s', p.path, '--workers', '2', '--policy-configmap', 'org-policy', '--trust-configmap', 'pipeline-trust'], process.env, p.dir, BIN);
    expect(res.code, res.stderr).toBe(0);
    const job = (parseAllDocuments(res.stdout) as unknown as Array<{ toJS(): any }>).map((d) => d.toJS()).find((o) => o.kind === 'Job');
    const pod = job.spec.template.spec;
    const c = pod.containers[0];
    expect(c.env.find((e: any) => e.name === 'REPRISE_POLICY')).toEqual({ name: 'REPRISE_POLICY', value: '/reprise/policy/reprise.policy.yaml' });
    expect(c.volumeMounts).toContainEqual({ name: 'policy', mountPath: '/reprise/policy', readOnly: true });
    expect(pod.volumes).toContainEqual({ name: 'policy', configMap: { name: 'org-policy', items: [{ key: 'reprise.policy.yaml', path: 'reprise.policy.yaml' }] } });
    expect(pod.volumes).toContainEqual({ name: 'trust', configMap: { name: 'pipeline-trust', items: [{ key: 'allowed_signers', path: 'allowed_signers' }] } });
    expect(res.stdout).toMatch(/^# .*ConfigMap org-policy \(key reprise\.policy\.yaml\)/m);
  });

  it('refuses a bad --workers (exit 2) and warns when no approval names the manifest', async () => {
    const p = plan();
    const bad = await runCli(['k8s', p.path, '--workers', '0'], process.env, p.dir, BIN);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/error\[USAGE\]: --workers/);
    const none = await runCli(['k8s', p.path, '--workers', '2', '--approvals', join(p.dir, 'nowhere')], process.env, p.dir, BIN);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stderr).toMatch(/no approval of sha256:[0-9a-f]{64}/);
  });
});
