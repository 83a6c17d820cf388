/** `mcp-mtls tidy`: removing the records of certificates that expired more than a retention ago. */
import type { Command } from 'commander';
import { DEFAULT_TIDY_RETENTION, tidyIndex, type TidyReport } from '../ca/tidy.js';
import { parseDuration } from '../util/duration.js';
import { emit, STORE_HELP } from './io.js';
import { openAuthority } from './issue.js';

export function registerTidy(program: Command): void {
  program
    .command('tidy')
    .description("remove from the CA's index the records of certificates that expired more than --older-than ago (renewed or not), with their revocations")
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--older-than <duration>', 'how long after expiry a record is kept', DEFAULT_TIDY_RETENTION)
    .option('--dry-run', 'only say what would be removed')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Never removed: a certificate still valid (it can still be revoked), a revoked certificate a CRL
still lists, and a certificate whose predecessor in a renewal chain stays. Removed serials are
never issued again.

Example:
  $ mcp-mtls tidy --older-than 90d --dry-run`,
    )
    .action(async (o) => {
      const ca = openAuthority(o.dir, o);
      try {
        const report = await tidyIndex(ca, { olderThanMs: parseDuration(o.olderThan, '--older-than'), ...(o.dryRun ? { dryRun: true } : {}) });
        emit(o.json, report, () => human(report));
      } finally {
        await ca.store.close();
      }
    });
}

function human(r: TidyReport): string {
  const n = r.serials.length;
  const what = `${r.removed.expired} expired, ${r.removed.superseded} superseded (renewed), ${r.removed.revocations} revocation record${r.removed.revocations === 1 ? '' : 's'}`;
  const lines = [
    n === 0 ? `Nothing to remove: no certificate expired before ${r.cutoff}.` : `${r.dryRun ? 'Would remove' : 'Removed'} ${n} certificate${n === 1 ? '' : 's'}: ${what}.`,
    ...r.serials.map((s) => `  ${s}`),
    ...(r.kept.chain ? [`Kept ${r.kept.chain} expired certificate${r.kept.chain === 1 ? '' : 's'} whose predecessor is still in the index (revoking it revokes its renewals).`] : []),
    `Index: ${r.recordsBefore} records${r.dryRun ? `, ${r.recordsAfter} after a real run` : ` before, ${r.recordsAfter} now`}.`,
  ];
  return `${lines.join('\n')}\n`;
}
