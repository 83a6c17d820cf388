/**
 * `mcp-mtls delegate --to service/chat-platform`: signs a delegation grant with the caller's own
 * certificate (docs/delegation.md) and prints it (or writes it, mode 0600). The actor exchanges
 * it at `ca serve` POST /delegate for short-lived certificates that act for the caller.
 */
import type { Command } from 'commander';
import { loadBundle } from '../bundle/load.js';
import { signGrant } from '../delegation/grant.js';
import { MtlsError } from '../errors.js';
import { assertPrincipalId, type PrincipalKind } from '../identity/names.js';
import { principalUri } from '../identity/principal.js';
import { parseDuration } from '../util/duration.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { emit, readBundlePassphrase } from './io.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerDelegate(program: Command): void {
  program
    .command('delegate')
    .description("let an actor (a platform or agent) act for you: sign a delegation grant with your own certificate, for the actor to exchange at the CA (docs/delegation.md)")
    .requiredOption('--to <actor>', 'the actor, as service/ID (or user/ID), e.g. service/chat-platform')
    .option('--bundle <file>', 'your bundle (profile, PKCS#12 or PEM folder)')
    .option('--profile <name>', 'your profile (mcp-mtls login / enroll --profile), instead of --bundle')
    .option('--passphrase-file <file>', 'the bundle passphrase (else $MCP_MTLS_BUNDLE_PASSPHRASE)')
    .option('--ttl <duration>', 'how long the actor may exchange the grant (capped by your certificate)', '8h')
    .option('--team <name>', 'delegate only this team of yours (repeatable; default: all your teams, as far as the CA lets the actor have them)', collect, [])
    .option('--role <name>', 'delegate only this role of yours (repeatable; default: all)', collect, [])
    .option('--no-roles', 'delegate no role')
    .option('--tool <glob>', 'let the actor call only tools matching this glob for you (repeatable; the policy\'s glob syntax, e.g. read_* or {list,get}_issue; default: no limit beyond the policy). Carried into the delegated certificate (profile v1.2): every server enforces it', collect, [])
    .option('--out <file>', 'write the grant to this file (mode 0600) instead of stdout')
    .option('--json', 'print the grant and what it says as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls delegate --profile default --to service/chat-platform --team sre --ttl 8h --out grant.jws\n  $ mcp-mtls delegate --profile default --to service/coding-agent --tool "read_*" --tool list_issues --out grant.jws')
    .action(async (o) => {
      if ((o.bundle === undefined) === (o.profile === undefined)) throw new MtlsError('USAGE', 'pass --bundle FILE or --profile NAME (one of them)', { hint: 'mcp-mtls delegate --profile default --to service/chat-platform' });
      const m = /^(user|service)\/(.+)$/.exec(o.to as string);
      if (!m) throw new MtlsError('USAGE', `--to ${o.to}: name the actor as service/ID or user/ID`, { hint: 'e.g. --to service/chat-platform' });
      const kind = m[1] as PrincipalKind;
      const id = assertPrincipalId(m[2] as string, kind);
      const bundle = await loadBundle(o.profile !== undefined ? { profile: o.profile } : o.bundle, { passphrase: () => readBundlePassphrase(o) });
      const me = bundle.identity;
      if (!me) throw new MtlsError('CERT_INVALID', 'the bundle holds no mcp-mtls client certificate', { hint: 'use the bundle mcp-mtls issued to you' });
      const ttlMs = parseDuration(o.ttl, '--ttl');
      const grant = await signGrant({
        chain: bundle.chain,
        key: bundle.key,
        actor: principalUri(me.trustDomain, kind, id),
        ttlMs,
        ...((o.team as string[]).length > 0 ? { teams: o.team } : {}),
        ...(o.roles === false ? { roles: [] } : (o.role as string[]).length > 0 ? { roles: o.role } : {}),
        ...((o.tool as string[]).length > 0 ? { tools: o.tool } : {}),
      });
      const expires = new Date(Math.min(Date.now() + ttlMs, me.notAfter.getTime())).toISOString();
      if (o.out) writeFileAtomic(o.out, `${grant}\n`, { mode: 0o600 });
      const tools = (o.tool as string[]).length > 0 ? [...new Set(o.tool as string[])].sort() : undefined;
      emit(o.json, { grant, delegator: me.principal, actor: principalUri(me.trustDomain, kind, id), expires, ...(tools ? { tools } : {}), ...(o.out ? { file: o.out } : {}) }, () =>
        o.out ? `wrote a grant for ${principalUri(me.trustDomain, kind, id)} to act for ${me.principal}${tools ? ` (tools ${tools.join(', ')} only)` : ''} until ${expires} to ${o.out}\n` : `${grant}\n`,
      );
    });
}
