/**
 * The frozen manifest: the normalized plan, the sha256 of every file it runs, the compiler
 * version, and `hash` = sha256 of the RFC 8785 canonical JSON of everything else. The manifest
 * file is that canonical JSON itself, so its bytes are reproducible and checkable.
 */
import canonicalize from 'canonicalize';
import type { Manifest, Plan } from '../schema/manifest.types.js';
import { ExitCode, RepriseError } from './errors.js';
import { version } from './paths.js';
import { sha256Hex } from './source.js';

export const MANIFEST_KIND = 'reprise/manifest@1';

/** RFC 8785 canonical JSON. */
export function canonicalJson(value: unknown): string {
  const s = canonicalize(value as object);
  if (s === undefined) throw new Error('value cannot be canonicalized');
  return s;
}

/** `sha256:<hex>` of the canonical JSON of a value. */
export function contentHash(value: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(value))}`;
}

export interface ManifestFiles {
  planSha256: string;
  handlerSha256: string;
  modules: Array<{ effect: string; path: string; sha256: string }>;
  source: { path: string; sha256: string } | null;
}

export function buildManifest(plan: Plan, files: ManifestFiles): Manifest {
  const body: Omit<Manifest, 'hash'> = {
    kind: MANIFEST_KIND,
    compiler: { name: 'reprise', version },
    plan,
    files: {
      plan: { sha256: files.planSha256 },
      handler: { path: plan.processing.handler, sha256: files.handlerSha256 },
      modules: files.modules,
      source: files.source,
    },
  };
  return { ...body, hash: contentHash(body) };
}

/** The manifest's bytes on disk. */
export function manifestBytes(m: Manifest): string {
  return canonicalJson(m);
}

/** Run id: `<name>.r<revision>.<first 8 hex of the hash>`. */
export function runIdOf(m: Pick<Manifest, 'hash' | 'plan'>): string {
  return `${m.plan.name}.r${m.plan.revision}.${m.hash.slice('sha256:'.length, 'sha256:'.length + 8)}`;
}

/**
 * Parses manifest bytes, accepting them only when they are exactly the canonical form of their
 * parse (no duplicate keys, no reordering, no alternative spellings) and the hash matches.
 */
export function parseManifestBytes(bytes: string, file = 'manifest'): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes);
  } catch (e) {
    throw new RepriseError('MANIFEST_INVALID', `${file} is not JSON: ${(e as Error).message}`, { exit: ExitCode.invalidInput, hint: 'recompile the plan with reprise compile' });
  }
  if (parsed === null || typeof parsed !== 'object' || (parsed as Manifest).kind !== MANIFEST_KIND) {
    throw new RepriseError('MANIFEST_INVALID', `${file} is not a reprise manifest`, { exit: ExitCode.invalidInput, hint: 'pass the .manifest.json written by reprise compile' });
  }
  if (canonicalJson(parsed) !== bytes.replace(/\n$/, '')) {
    throw new RepriseError('MANIFEST_NOT_CANONICAL', `${file} is not in canonical form (duplicate keys, reordered keys or altered spelling)`, {
      exit: ExitCode.refused,
      hint: 'a manifest is used only byte-for-byte as reprise compile wrote it; recompile it',
    });
  }
  const m = parsed as Manifest;
  const { hash, ...body } = m;
  if (contentHash(body) !== hash) {
    throw new RepriseError('MANIFEST_HASH_MISMATCH', `${file}: its content does not match its hash`, {
      exit: ExitCode.refused,
      hint: 'the manifest was edited after compiling; recompile it',
    });
  }
  return m;
}
