/**
 * The PostgreSQL store's schema, as migrations: migration N takes the schema from version N-1
 * to N. A migration once released is never changed; a change of the schema is a new one.
 */

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = 10;

/** Migration N takes the schema from version N-1 to N; each runs once, in a transaction. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE SEQUENCE index_order;
  CREATE TABLE certificates (
    serial text PRIMARY KEY,
    ord bigint NOT NULL UNIQUE DEFAULT nextval('index_order'),
    der bytea NOT NULL,
    record json NOT NULL,
    type text NOT NULL,
    principal text,
    not_after timestamptz NOT NULL
  );
  CREATE TABLE revocations (
    serial text PRIMARY KEY,
    ord bigint NOT NULL UNIQUE DEFAULT nextval('index_order'),
    record json NOT NULL,
    reason text NOT NULL,
    revoked_at timestamptz NOT NULL
  );
  CREATE TABLE audit (
    ord bigserial PRIMARY KEY,
    event json NOT NULL
  );
  CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
  CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TABLE crls (
    name text PRIMARY KEY CHECK (name IN ('root', 'intermediate')),
    number numeric NOT NULL,
    der bytea NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE SEQUENCE crl_number_root;
  CREATE SEQUENCE crl_number_intermediate;
  CREATE TABLE tokens (
    id text PRIMARY KEY,
    hash text NOT NULL UNIQUE,
    ord bigserial NOT NULL UNIQUE,
    token json NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
  );
  CREATE TABLE ca_meta (
    key text PRIMARY KEY,
    value text NOT NULL
  );
  `,
  // 2: which certificate a token enrolled (a client whose answer was lost can fetch it again), and
  // which certificate renewed which (a certificate renews once)
  `
  ALTER TABLE tokens ADD COLUMN used_for text;
  CREATE INDEX certificates_renewed_from ON certificates ((record->>'renewedFrom'));
  `,
  // 3: serials whose records `tidy` removed: never issued again
  `
  CREATE TABLE retired_serials (
    serial text PRIMARY KEY,
    retired_at timestamptz NOT NULL DEFAULT now()
  );
  `,
  // 4: once-only credentials (hashes of ID tokens traded at /login/sign, #22), kept until they expire
  `
  CREATE TABLE used_once (
    key text PRIMARY KEY,
    expires_at timestamptz NOT NULL
  );
  CREATE INDEX used_once_expires_at ON used_once (expires_at);
  `,
  // 5: the decisions servers and gateways send (createAuditLog('postgres://...'), gateway.yaml
  // `decisions:`), read by the console, pruned by `ca serve` past console.decisions.retention.
  // A new table only: nothing of a v4 database is rewritten or locked, and migrate() applies it
  // under its advisory lock, once, whichever replica gets there first. Rows are never updated
  // (trigger); the servers' role is granted INSERT alone (docs/operations.md), the CA's role
  // deletes what retention drops. Indexes: time (the range every query has), and each filter
  // the console offers, with time second so a filter plus a range is one index scan.
  `
  CREATE TABLE decisions (
    id bigserial PRIMARY KEY,
    time timestamptz NOT NULL,
    event text NOT NULL CHECK (event IN ('decision', 'auth.refused')),
    principal text,
    method text,
    target text,
    allowed boolean NOT NULL,
    rule_id text,
    reason text,
    source text
  );
  CREATE INDEX decisions_time ON decisions (time);
  CREATE INDEX decisions_target_time ON decisions (target, time);
  CREATE INDEX decisions_principal_time ON decisions (principal, time);
  CREATE INDEX decisions_rule_time ON decisions (rule_id, time);
  CREATE INDEX decisions_allowed_time ON decisions (allowed, time);
  CREATE FUNCTION decisions_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the decisions table is append-only'; END $$;
  CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
    FOR EACH ROW EXECUTE FUNCTION decisions_no_update();
  `,
  // 6: lookups without reading every certificate (#24): the delegated certificates of a serial
  // and of an actor's certificate (revocation), and `list --user/--service/--team/--role` (GIN on the JSON arrays). Building
  // them reads the table once: measured 1M certificates in docs/operations.md
  `
  CREATE INDEX certificates_delegated_from ON certificates ((record->>'delegatedFrom'));
  CREATE INDEX certificates_actor_serial ON certificates ((record->>'actorSerial'));
  CREATE INDEX certificates_id ON certificates ((record->>'id'));
  CREATE INDEX certificates_teams ON certificates USING gin (((record->'teams')::jsonb));
  CREATE INDEX certificates_roles ON certificates USING gin (((record->'roles')::jsonb));
  `,
  // 7: the delegated certificates acting for a principal, however obtained (a grant or an ID
  // token): `revoke --principal` revokes them with the principal's own certificates
  `
  CREATE INDEX certificates_acting_for ON certificates ((record->>'actingFor'));
  `,
  // 8: the principals revoked (`revoke --principal`) and when, one row each, written in the
  // revoking transaction: /login/sign and POST /delegate refuse their ID tokens issued until then
  `
  CREATE TABLE revoked_principals (
    principal text PRIMARY KEY,
    revoked_at timestamptz NOT NULL,
    reason text NOT NULL
  );
  `,
  // 9: the successor of a renewed certificate by one index scan whatever the statistics say
  // (#24). `WHERE record->>'renewedFrom' = $1 ORDER BY ord LIMIT 1` on the index of migration 2
  // alone left the planner a choice, and on a table grown since its last ANALYZE it walked the
  // ord index and filtered every row: 1.7 ms a renewal at 6,000 certificates, growing with the
  // table, where (renewedFrom, ord) serves condition and order at once. The same for the
  // delegated certificates of a serial and of an actor, which are read in ord order. And the
  // unused tokens of a principal, which `revoke --principal` deletes (a scan of every token
  // before: 215 ms at 1M). Only CREATE INDEX (SHARE: issuance waits, reads do not) and ANALYZE
  // (the new expressions' statistics); the old indexes go in 10, in a transaction of its own:
  // dropping them here would upgrade SHARE to ACCESS EXCLUSIVE, which deadlocks with an
  // issuance that read certificates and waits to insert, and blocks reads for the builds left
  `
  CREATE INDEX certificates_renewed_from_ord ON certificates ((record->>'renewedFrom'), ord);
  CREATE INDEX certificates_delegated_from_ord ON certificates ((record->>'delegatedFrom'), ord);
  CREATE INDEX certificates_actor_serial_ord ON certificates ((record->>'actorSerial'), ord);
  CREATE INDEX tokens_unused_principal ON tokens ((token->'claims'->>'kind'), (token->'claims'->>'id')) WHERE used_at IS NULL;
  ANALYZE certificates;
  ANALYZE tokens;
  `,
  // 10: the indexes 9 made redundant (a moment of ACCESS EXCLUSIVE each, nothing built under it).
  // IF EXISTS: builds of migration 2 from before it made certificates_renewed_from have none
  `
  DROP INDEX IF EXISTS certificates_renewed_from;
  DROP INDEX IF EXISTS certificates_delegated_from;
  DROP INDEX IF EXISTS certificates_actor_serial;
  `,
];

if (MIGRATIONS.length !== SCHEMA_VERSION) throw new Error('internal error: SCHEMA_VERSION and MIGRATIONS disagree');
