/** The top of the `mcp-mtls` program, before any command group: shared by the full program and the one-group program. */
import { Command } from 'commander';
import { VERSION } from '../version.js';

export function baseProgram(options: { json?: boolean } = {}): Command {
  return new Command('mcp-mtls')
    // with --json, parse errors are JSON on stderr too (inherited by every subcommand)
    .configureOutput({
      writeErr: (text) =>
        process.stderr.write(options.json && text.startsWith('error:') ? `${JSON.stringify({ error: { code: 'USAGE', message: text.replace(/^error: /, '').trim() } })}\n` : text),
    })
    .description('Mutual TLS identity for MCP servers: a small CA, certificates that say who calls, and policy.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError(options.json ? false : '(run with --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  $ mcp-mtls ca init --trust-domain acme.test
  $ mcp-mtls issue server --dns mcp.acme.test --out ./certs
  $ mcp-mtls issue client --user alice --team sre --role admin --out ./certs
  $ mcp-mtls inspect ./certs/alice.crt
  $ mcp-mtls list --team sre

The CA folder is --dir, else $MCP_MTLS_PKI_DIR, else ./pki.`,
    );
}
