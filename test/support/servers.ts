/**
 * Real PostgreSQL and Redis servers for the test suite, started from the machine's binaries.
 *
 * PostgreSQL refuses to run as root, so when the suite runs as root (CI) the cluster is created
 * and started as the `postgres` user through `runuser`, in a data directory that user owns.
 * Redis runs with an append-only file so that a stop/start keeps its keys, as a production
 * dedupe store would.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A free TCP port on loopback (bound then released). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function pgUser(): { uid: number; gid: number } | undefined {
  if (!asRoot) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) throw new Error('running as root needs a `postgres` user to own the test cluster');
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function runAsPg(cmd: string, args: string[]): { status: number | null; out: string } {
  const full = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] as const : [cmd, args] as const;
  const r = spawnSync(full[0], [...full[1]], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export interface PgServer {
  url: string;
  port: number;
  dataDir: string;
  /** Base URL for a database of this cluster. */
  urlFor(database: string): string;
  start(): void;
  /** `fast` waits for clients to be disconnected; `immediate` is a crash. */
  stop(mode?: 'fast' | 'immediate'): void;
  destroy(): void;
}

export async function startPostgres(): Promise<PgServer> {
  if (!existsSync(join(PG_BIN, 'initdb'))) {
    throw new Error(`PostgreSQL server binaries not found in ${PG_BIN} (set PG_BIN)`);
  }
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'reprise-pg-'));
  const owner = pgUser();
  if (owner) chownSync(dataDir, owner.uid, owner.gid);
  const init = runAsPg(join(PG_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.out}`);
  const conf = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${dataDir}'`,
    'max_connections = 400',
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'shared_buffers = 256MB',
    "log_min_messages = warning",
  ].join('\n');
  writeFileSync(join(dataDir, 'postgresql.auto.conf'), `${conf}\n`);
  if (owner) chownSync(join(dataDir, 'postgresql.auto.conf'), owner.uid, owner.gid);
  const server: PgServer = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    urlFor: (db) => `postgres://postgres@127.0.0.1:${port}/${db}`,
    start() {
      const r = runAsPg(join(PG_BIN, 'pg_ctl'), ['-D', dataDir, '-l', join(dataDir, 'server.log'), '-w', '-t', '60', 'start']);
      if (r.status !== 0) throw new Error(`pg_ctl start failed:\n${r.out}`);
    },
    stop(mode = 'fast') {
      const r = runAsPg(join(PG_BIN, 'pg_ctl'), ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
      if (r.status !== 0 && !/not running|No such process|Is server running/.test(r.out)) {
        throw new Error(`pg_ctl stop failed:\n${r.out}`);
      }
    },
    destroy() {
      try { server.stop('immediate'); } catch { /* already down */ }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  server.start();
  return server;
}

export interface RedisServer {
  url: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const bin = process.env.REDIS_SERVER ?? 'redis-server';
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'reprise-redis-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(bin, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no',
    ], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ping = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
      if (ping.stdout?.trim() === 'PONG') return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => { c.once('exit', () => resolve()); c.kill('SIGKILL'); });
    child = undefined;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    async destroy() { await stop(); rmSync(dir, { recursive: true, force: true }); },
  };
}
