/**
 * Control of a run on the embedded store. PGlite allows one process per data directory, so
 * `reprise pause|resume|abort` cannot write the flag while the run holds the store; it drops a
 * flag file next to the store instead, which the running process applies (recording who asked)
 * within a second. The running process also leaves a status snapshot there for `reprise status`.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDbUrl } from '../db/database.js';
import type { Control } from '../store/store.js';

/** The control directory of an embedded store, or undefined for a server store. */
export function controlDirOf(stateUrl: string): string | undefined {
  const p = parseDbUrl(stateUrl);
  return p.kind === 'pglite' && p.dataDir ? `${p.dataDir}.control` : undefined;
}

const safe = (runId: string): string => runId.replace(/[^A-Za-z0-9._-]/g, '_');

export interface ControlRequest {
  control: Control;
  actor: string;
  at: string;
  reason?: string;
}

export function writeControlRequest(dir: string, runId: string, req: ControlRequest): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${safe(runId)}.control.json`);
  writeFileSync(`${path}.tmp`, JSON.stringify(req));
  renameSync(`${path}.tmp`, path);
  return path;
}

export function takeControlRequest(dir: string, runId: string): ControlRequest | undefined {
  const path = join(dir, `${safe(runId)}.control.json`);
  try {
    const req = JSON.parse(readFileSync(path, 'utf8')) as ControlRequest;
    rmSync(path, { force: true });
    return req;
  } catch {
    return undefined;
  }
}

export function writeStatusSnapshot(dir: string, runId: string, snapshot: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${safe(runId)}.status.json`);
  writeFileSync(`${path}.tmp`, JSON.stringify(snapshot));
  renameSync(`${path}.tmp`, path);
}

export function readStatusSnapshots(dir: string): Array<Record<string, unknown>> {
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.status.json'));
  } catch {
    return [];
  }
  const out: Array<Record<string, unknown>> = [];
  for (const f of files) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')));
    } catch {
      // being rewritten; skip
    }
  }
  return out;
}

export function clearStatusSnapshot(dir: string, runId: string): void {
  rmSync(join(dir, `${safe(runId)}.status.json`), { force: true });
}
