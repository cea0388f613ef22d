/**
 * Starts one PostgreSQL cluster and one Redis server for the whole suite, unless CI already
 * started them (REPRISE_TEST_PG_URL / REPRISE_TEST_REDIS_URL). Tests isolate themselves with a
 * database or key prefix of their own (see ./db.ts); tests that stop a server start their own.
 */
import type { TestProject } from 'vitest/node';
import { startPostgres, startRedis } from './servers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanup: Array<() => unknown> = [];
  let pgUrl = process.env.REPRISE_TEST_PG_URL;
  if (!pgUrl) {
    const pg = await startPostgres();
    cleanup.push(() => pg.destroy());
    pgUrl = pg.url;
  }
  let redisUrl = process.env.REPRISE_TEST_REDIS_URL;
  if (!redisUrl) {
    const redis = await startRedis();
    cleanup.push(() => redis.destroy());
    redisUrl = redis.url;
  }
  project.provide('pgUrl', pgUrl);
  project.provide('redisUrl', redisUrl);
  return async () => {
    for (const fn of cleanup.reverse()) await fn();
  };
}
