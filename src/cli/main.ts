/** The `mcp-mtls` program: one file per command group, wired here. */
import { Command, CommanderError } from 'commander';
import { registerCa } from './ca.js';
import { registerIssue } from './issue.js';
import { registerCsr } from './csr.js';
import { registerList } from './list.js';
import { registerInspect } from './inspect.js';
import { registerRevocation } from './revocation.js';
import { registerLifecycle } from './lifecycle.js';
import { registerBundle } from './bundle.js';
import { registerPolicy } from './policy.js';
import { registerDelegate } from './delegate.js';
import { registerClient } from './client.js';
import { registerLogin } from './login.js';
import { registerGateway } from './gateway.js';
import { registerServe } from './serve.js';
import { registerToken } from './token.js';
import { registerTidy } from './tidy.js';
import { registerCompletion } from './completion.js';
import { EXIT, reportError } from './io.js';
import { VERSION } from '../version.js';


export function createProgram(options: { json?: boolean } = {}): Command {
  const program = new Command('mcp-mtls')
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
  const ca = registerCa(program);
  registerIssue(program);
  registerCsr(program);
  registerRevocation(program);
  registerLifecycle(program, ca);
  registerTidy(program);
  registerServe(ca);
  registerToken(program);
  registerBundle(program);
  registerPolicy(program);
  registerDelegate(program);
  registerClient(program);
  registerLogin(program);
  registerGateway(program);
  registerList(program);
  registerInspect(program);
  registerCompletion(program, (text) => process.stdout.write(text));
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `mcp-mtls --help | head`: a closed pipe is not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const json = argv.includes('--json');
  const program = createProgram({ json });
  program.exitOverride();
  for (const cmd of allCommands(program)) cmd.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; every other parse error is a usage error
      process.exitCode = e.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    process.exitCode = reportError(e, json);
  }
}

function* allCommands(cmd: Command): Generator<Command> {
  for (const c of cmd.commands) {
    yield c;
    yield* allCommands(c);
  }
}
