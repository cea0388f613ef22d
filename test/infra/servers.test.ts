import { describe, expect, it, inject } from 'vitest';
import { Redis } from 'ioredis';
import { createTestDatabase, withClient } from '../support/db.js';

describe('test servers', () => {
  it('has a real PostgreSQL 15 and an isolated database', async () => {
    const db = await createTestDatabase('infra');
    const version = await withClient(db.url, async (c) => (await c.query('show server_version_num')).rows[0].server_version_num);
    expect(Number(version)).toBeGreaterThanOrEqual(150000);
    await db.drop();
  });
  it('has a real Redis', async () => {
    const r = new Redis(inject('redisUrl'));
    expect(await r.ping()).toBe('PONG');
    r.disconnect();
  });
});
