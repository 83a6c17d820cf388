/** `mcp-mtls token create` and `mcp-mtls token list`: one-time enrollment tokens for `ca serve` (POST /sign). */
import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../util/duration.js';
import { createEnrollmentToken, listTokens } from '../ca/tokens.js';
import { MtlsError } from '../errors.js';
import { emit, STORE_HELP } from './io.js';
import { claimsFrom, openAuthority, principalOptions } from './issue.js';
import { table } from './list.js';

export function registerToken(program: Command): void {
  const token = program.command('token').description('one-time enrollment tokens: a workload trades one for a certificate at `ca serve` (POST /sign)');

  principalOptions(
    token
      .command('create')
      .description('create a one-time enrollment token; the secret is printed once, only its hash is kept')
      .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
      .option('--store <url>', STORE_HELP),
  )
    .requiredOption('--ttl <duration>', 'how long the token can be used, e.g. 15m')
    .option('--cert-ttl <duration>', 'lifetime of the certificate it enrolls (default: the CA config, 24h; at most limits.client.maxTtl, 30d: checked now)')
    .option('--json', 'print the result as JSON (the secret is in "token")')
    .addHelpText(
      'after',
      '\nThe secret goes to stdout alone (details to stderr), so it can be captured:\n  $ TOKEN=$(mcp-mtls token create --service build-bot --team ci --ttl 15m --cert-ttl 1h)\n  $ curl --cacert root.crt -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/pkcs10" --data-binary @bot.csr https://ca.acme.test:8443/sign',
    )
    .action(async (o) => {
      const ttlMs = parseDuration(o.ttl, '--ttl');
      if (o.certTtl !== undefined) parseDuration(o.certTtl, '--cert-ttl');
      const ca = openAuthority(o.dir, o);
      try {
        const { secret, token: t } = await createEnrollmentToken(ca, { ...claimsFrom(o), ttlMs, ...(o.certTtl !== undefined ? { certTtl: o.certTtl } : {}) });
        const principal = `spiffe://${ca.config.trustDomain}/${t.claims.kind}/${t.claims.id}`;
        if (o.json) {
          emit(true, { token: secret, id: t.id, principal, teams: t.claims.teams, roles: t.claims.roles, ...(t.claims.email ? { email: t.claims.email } : {}), expiresAt: t.expiresAt, certTtl: t.certTtl ?? ca.config.defaults.clientTtl }, () => '');
        } else {
          process.stdout.write(`${secret}\n`);
          process.stderr.write(
            `Enrollment token ${t.id} for ${principal} teams=[${t.claims.teams.join(',')}] roles=[${t.claims.roles.join(',')}]\n` +
              `  usable once until ${t.expiresAt} (${formatDuration(ttlMs)}); enrolls a ${t.certTtl ?? ca.config.defaults.clientTtl} certificate\n` +
              `  the secret above is shown only now: hand it over privately\n`,
          );
        }
      } finally {
        await ca.store.close();
      }
    });

  token
    .command('list')
    .description('enrollment tokens: ids, claims, expiry, used or not (never secrets)')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--status <status>', 'only unused | used | expired')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      if (o.status !== undefined && !['unused', 'used', 'expired'].includes(o.status)) {
        throw new MtlsError('USAGE', `unknown --status "${o.status}"`, { hint: 'use unused, used or expired' });
      }
      const ca = openAuthority(o.dir, o);
      try {
        const tokens = (await listTokens(ca)).filter((t) => !o.status || t.status === o.status);
        emit(o.json, { tokens }, () =>
          tokens.length === 0
            ? 'No enrollment tokens.\n'
            : table(
                ['ID', 'PRINCIPAL', 'TEAMS', 'ROLES', 'EXPIRES', 'STATUS'],
                tokens.map((t) => [t.id, t.principal, t.claims.teams.join(',') || '-', t.claims.roles.join(',') || '-', t.expiresAt, t.status === 'used' ? `used ${t.usedAt}` : t.status]),
              ),
        );
      } finally {
        await ca.store.close();
      }
    });
}

