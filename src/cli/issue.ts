/** `mcp-mtls issue client` and `mcp-mtls issue server`, including batch onboarding. */
import type { Command } from 'commander';
import { Authority, type IssuedCertificate } from '../ca/authority.js';
import { FsStore } from '../ca/store/fs-store.js';
import { loadBatchFile } from '../ca/batch.js';
import { parseDuration, parseTimestamp } from '../util/duration.js';
import { checkOutput, outputBaseName, outputDelivery, plannedOutput } from '../ca/output.js';
import { MtlsError } from '../errors.js';
import type { PrincipalKind } from '../identity/names.js';
import { parseKeyType } from '../x509/keys.js';
import type { OutputFiles } from '../ca/output.js';
import { collect, emit, once, progressBar, readPassphrase, resolveDir, STORE_HELP, storeOptions, type PassphraseOptions } from './io.js';

/** Opens the CA with the store the user chose: --store, $MCP_MTLS_STORE, config.yaml's `store:`, else the folder. */
export function openAuthority(dir: string | undefined, opts: PassphraseOptions & { store?: string }): Authority {
  const resolved = resolveDir(dir);
  // MCP_MTLS_CRASH_AT: fault injection for the crash tests (test/ca/store-crash.test.ts)
  const crashAt = process.env.MCP_MTLS_CRASH_AT;
  return Authority.open(resolved, {
    passphrase: (which) => readPassphrase(opts, `Passphrase for the ${which} CA key: `),
    ...storeOptions(opts),
    ...(crashAt ? { store: new FsStore(resolved, { crashAt }) } : {}),
  });
}

/** The JSON shape of one issued certificate (documented in the README). */
export function issuedJson(issued: IssuedCertificate, files: OutputFiles) {
  const r = issued.record;
  return {
    serial: r.serial,
    type: r.type,
    ...(r.principal ? { principal: r.principal, kind: r.kind } : {}),
    id: r.id,
    teams: r.teams,
    roles: r.roles,
    ...(r.email ? { email: r.email } : {}),
    ...(r.dns ? { dns: r.dns, ips: r.ips } : {}),
    keyType: r.keyType,
    fingerprint: r.fingerprint,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    files,
  };
}

export function issuedHuman(issued: IssuedCertificate, files: OutputFiles): string {
  const r = issued.record;
  const who = r.principal ?? [...(r.dns ?? []), ...(r.ips ?? [])].join(', ');
  const claims = r.type === 'client' ? ` teams=[${r.teams.join(',')}] roles=[${r.roles.join(',')}]` : '';
  return [
    `Issued ${r.type} certificate for ${who}${claims}`,
    `  serial ${r.serial}, valid until ${r.notAfter}`,
    `  certificate: ${files.cert}`,
    ...(files.key ? [`  key:         ${files.key}`] : []),
    `  CA root:     ${files.ca}`,
    '',
  ].join('\n');
}

export function principalOf(o: { user?: string; service?: string }): { kind: PrincipalKind; id: string } {
  if ((o.user === undefined) === (o.service === undefined)) {
    throw new MtlsError('USAGE', 'give exactly one of --user ID or --service ID', { hint: 'e.g. --user alice, or --service build-bot' });
  }
  return o.user !== undefined ? { kind: 'user', id: o.user } : { kind: 'service', id: o.service as string };
}

export function principalOptions(cmd: Command): Command {
  return cmd
    .option('--user <id>', 'a person: spiffe://<trust-domain>/user/<id>', once('--user'))
    .option('--service <id>', 'a workload or agent: spiffe://<trust-domain>/service/<id>', once('--service'))
    .option('--team <name>', 'a team (repeatable)', collect, [])
    .option('--role <name>', 'a role (repeatable)', collect, [])
    .option('--email <address>', 'an email SAN (display only)', once('--email'));
}

export function claimsFrom(o: { user?: string; service?: string; team: string[]; role: string[]; email?: string }) {
  return { ...principalOf(o), teams: o.team, roles: o.role, ...(o.email ? { email: o.email } : {}) };
}

export const NOT_BEFORE_HELP = 'valid from this time (RFC 3339, e.g. 2026-12-01T09:00:00Z; at most 1h in the past; default now)';
export const NOT_AFTER_HELP = 'valid until this time (RFC 3339), instead of --ttl; within the type\'s maxTtl and the intermediate CA\'s validity';

/** --not-before / --not-after as the issuance request takes them. */
export function validityFrom(o: { notBefore?: string; notAfter?: string; ttl?: string }): { notBefore?: Date; notAfter?: Date } {
  if (o.notAfter !== undefined && o.ttl !== undefined) throw new MtlsError('USAGE', 'give --ttl or --not-after, not both', { hint: '--not-after says when the certificate ends; --ttl how long it lives' });
  return {
    ...(o.notBefore !== undefined ? { notBefore: parseTimestamp(o.notBefore, '--not-before') } : {}),
    ...(o.notAfter !== undefined ? { notAfter: parseTimestamp(o.notAfter, '--not-after') } : {}),
  };
}

/** The --batch formats, in `issue client --help` (and so in docs/cli.md); docs/operations.md has the same with more words. */
const BATCH_HELP = `
Batch files (--batch FILE): one client certificate per row, all checked before any is signed
(an error names the line; nothing is issued). Files ending .yaml/.yml are YAML, others CSV.

CSV: a header line naming the columns, then one row per principal. Columns: type (user or
service) and id, required; teams, roles (lists split by ';', ',' or spaces), email, ttl
(e.g. 24h), notBefore, notAfter (RFC 3339) optional. Lines starting with # are comments.
  type,id,teams,roles,email,ttl
  user,alice,sre;platform,admin,alice@acme.test,
  service,build-bot,ci,,,7d

YAML: a list; each entry has user or service (the id), and optionally teams, roles (lists),
email, ttl, notBefore, notAfter.
  - user: alice
    teams: [sre, platform]
    roles: [admin]
    email: alice@acme.test
  - service: build-bot
    teams: [ci]
    ttl: 7d

A row's ttl, notBefore and notAfter win over --ttl, --not-before and --not-after for that row.`;

export function registerIssue(program: Command): void {
  const issue = program.command('issue').description('issue client and server certificates');

  principalOptions(
    issue
      .command('client')
      .description('issue a client certificate (and its key) for a user or a service')
      .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP),
  )
    .option('--ttl <duration>', 'lifetime (default: the CA config, 24h; at most limits.client.maxTtl, 30d)')
    .option('--not-before <time>', NOT_BEFORE_HELP)
    .option('--not-after <time>', NOT_AFTER_HELP)
    .option('--key-type <type>', 'ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | ed25519 (default: the CA\'s)')
    .option('--batch <file>', 'issue one certificate per row of a CSV or YAML file (formats below)')
    .requiredOption('--out <dir>', 'where to write <id>.crt, <id>.key and ca.crt')
    .option('--passphrase-file <file>', 'passphrase of an encrypted CA key')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `\nExamples:\n  $ mcp-mtls issue client --user alice --team sre --role admin --out ./certs\n  $ mcp-mtls issue client --user alice --not-before 2026-12-01T09:00:00Z --not-after 2026-12-05T17:00:00Z --out ./certs\n  $ mcp-mtls issue client --batch people.csv --out ./certs\n${BATCH_HELP}`,
    )
    .action(async (o) => {
      const validity = validityFrom(o);
      const ca = openAuthority(o.dir, o);
      const keyType = o.keyType ? parseKeyType(o.keyType) : undefined;
      const ttlMs = o.ttl ? parseDuration(o.ttl, '--ttl') : undefined;
      if (o.batch) {
        if (o.user || o.service || o.team.length || o.role.length || o.email) {
          throw new MtlsError('USAGE', '--batch takes the principals from the file; drop --user/--service/--team/--role/--email');
        }
        return issueBatch(ca, o.batch, o.out, { keyType, ttlMs, validity, json: o.json });
      }
      const claims = claimsFrom(o);
      const files = plannedOutput(o.out, outputBaseName(claims.id), true);
      checkOutput(files, ca.rootPem);
      const issued = await ca.issueClient({ ...claims, ...(keyType ? { keyType } : {}), ...(ttlMs ? { ttlMs } : {}), ...validity }, { delivery: outputDelivery([files], ca.rootPem) });
      emit(o.json, issuedJson(issued, files), () => issuedHuman(issued, files));
    });

  issue
    .command('server')
    .description('issue a server certificate for DNS names and IP addresses')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--dns <name>', 'a DNS name (repeatable)', collect, [])
    .option('--ip <address>', 'an IP address (repeatable)', collect, [])
    .option('--ttl <duration>', 'lifetime (default: the CA config, 90d; at most limits.server.maxTtl, 397d)')
    .option('--not-before <time>', NOT_BEFORE_HELP)
    .option('--not-after <time>', NOT_AFTER_HELP)
    .option('--key-type <type>', 'ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | ed25519 (default: the CA\'s)')
    .requiredOption('--out <dir>', 'where to write <name>.crt, <name>.key and ca.crt')
    .option('--passphrase-file <file>', 'passphrase of an encrypted CA key')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls issue server --dns mcp.acme.test --ip 127.0.0.1 --out ./certs')
    .action(async (o) => {
      const validity = validityFrom(o);
      const ca = openAuthority(o.dir, o);
      const keyType = o.keyType ? parseKeyType(o.keyType) : undefined;
      const ttlMs = o.ttl ? parseDuration(o.ttl, '--ttl') : undefined;
      const first = o.dns[0] ?? o.ip[0];
      if (!first) throw new MtlsError('USAGE', 'a server certificate needs at least one --dns or --ip', { hint: 'e.g. --dns mcp.acme.test' });
      const files = plannedOutput(o.out, outputBaseName(first), true);
      checkOutput(files, ca.rootPem);
      const issued = await ca.issueServer({ dns: o.dns, ips: o.ip, ...(keyType ? { keyType } : {}), ...(ttlMs ? { ttlMs } : {}), ...validity }, { delivery: outputDelivery([files], ca.rootPem) });
      emit(o.json, issuedJson(issued, files), () => issuedHuman(issued, files));
    });
}

async function issueBatch(ca: Authority, file: string, out: string, o: { keyType: ReturnType<typeof parseKeyType> | undefined; ttlMs: number | undefined; validity: { notBefore?: Date; notAfter?: Date }; json?: boolean }) {
  const rows = loadBatchFile(file);
  const files = rows.map((r) => plannedOutput(out, outputBaseName(r.id), true));
  for (const f of files) checkOutput(f, ca.rootPem);
  const started = performance.now();
  const bar = progressBar('issuing');
  const issued = await ca.issueClients(
    rows.map(({ line: _line, ...r }) => {
      // a row's own lifetime or end wins over the command line's (both are one choice: ttl or notAfter)
      const rowEnds = r.ttlMs !== undefined || r.notAfter !== undefined;
      return {
        ...r,
        ...(o.keyType && !r.keyType ? { keyType: o.keyType } : {}),
        ...(!rowEnds && o.ttlMs ? { ttlMs: o.ttlMs } : {}),
        ...(!rowEnds && o.validity.notAfter ? { notAfter: o.validity.notAfter } : {}),
        ...(r.notBefore === undefined && o.validity.notBefore ? { notBefore: o.validity.notBefore } : {}),
      };
    }),
    { delivery: outputDelivery(files, ca.rootPem), ...(bar ? { onProgress: bar } : {}) },
  );
  const seconds = (performance.now() - started) / 1000;
  emit(o.json, { count: issued.length, seconds, issued: issued.map((c, i) => issuedJson(c, files[i]!)) }, () =>
    `Issued ${issued.length} client certificates in ${seconds.toFixed(2)} s into ${out}\n` +
    issued.map((c) => `  ${c.record.principal} teams=[${c.record.teams.join(',')}] roles=[${c.record.roles.join(',')}] serial ${c.record.serial}`).join('\n') +
    '\n',
  );
}
