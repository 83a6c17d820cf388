/**
 * A test file's PostgreSQL with login roles of its own: starts the throwaway server before the
 * file's tests (test/support/postgres.ts), makes roles with the grants a test names, drops them
 * (and what they own) and stops the server after. One place for the set-up the decisions tests
 * (console, gateway) each had a copy of.
 */
import crypto from 'node:crypto';
import { after, before } from 'node:test';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './postgres.js';

/** One statement (or several, no parameters then) on a connection of its own. */
export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query<T>(text, params);
  } finally {
    await c.end();
  }
}

/** The decisions writer's grants as docs/operations.md gives them: INSERT on the columns servers write, the id sequence. */
export const insertOnlyGrants = (role: string, db: string): string =>
  `CREATE ROLE ${role} LOGIN; GRANT CONNECT ON DATABASE ${db} TO ${role}; GRANT USAGE ON SCHEMA public TO ${role}; GRANT INSERT (time, event, principal, method, target, allowed, rule_id, reason, source) ON decisions TO ${role}; GRANT USAGE ON SEQUENCE decisions_id_seq TO ${role}`;

export interface PostgresWithRoles {
  /** the server (started by the file's before hook) */
  readonly pg: TestPostgres;
  /**
   * A new login role on `url`'s database, `grants(role, database)` run as the owner; the URL that
   * logs in as it (no password: the throwaway server trusts loopback).
   */
  role(url: string, grants: (role: string, database: string) => string): Promise<string>;
}

export function usePostgresWithRoles(prefix = 'decisions_writer'): PostgresWithRoles {
  let server: TestPostgres | undefined;
  const roles: string[] = [];
  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    if (!server) return;
    if (roles.length) {
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      for (const r of roles) await c.query(`DROP OWNED BY ${r}; DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
      await c.end();
    }
    await server.stop();
  });
  return {
    get pg() {
      if (!server) throw new Error('PostgreSQL is not started yet (use it inside a test)');
      return server;
    },
    async role(url, grants) {
      const role = `${prefix}_${crypto.randomBytes(4).toString('hex')}`;
      roles.push(role);
      await sql(url, grants(role, new URL(url).pathname.slice(1)));
      const u = new URL(url);
      u.username = role;
      return u.toString();
    },
  };
}
