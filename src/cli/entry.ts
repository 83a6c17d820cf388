/**
 * The `mcp-mtls` process (bin/mcp-mtls.js): parses argv and runs the command. A command line whose
 * first word names a command group below loads only that group's modules: importing every group
 * (the MCP SDK adapters, undici, OpenID, the gateway, ...) cost a CLI call about half of its CPU
 * (0.68 vs 0.37 CPU s for `issue client` on the 2-core machine). Anything else (help, completion,
 * a typo, a command not listed here) gets the full program of main.ts, so an unlisted new command
 * still works; test/cli/entry.test.ts checks each listed group defines the same commands as there.
 */
import type { Command } from 'commander';
import { CommanderError } from 'commander';
import { EXIT, reportError } from './io.js';
import { baseProgram } from './program-base.js';

type Register = (program: Command) => void;
/** ca init/serve/status/..., renew and expiring come from three modules that share the `ca` command */
const caGroup = async (): Promise<Register> => {
  const [{ registerCa }, { registerLifecycle }, { registerServe }] = await Promise.all([import('./ca.js'), import('./lifecycle.js'), import('./serve.js')]);
  return (p) => {
    const ca = registerCa(p);
    registerLifecycle(p, ca);
    registerServe(ca);
  };
};

/** first word of the command line -> the registration of the group that defines it */
export const GROUPS: Record<string, () => Promise<Register>> = {
  ca: caGroup,
  renew: caGroup,
  expiring: caGroup,
  issue: async () => (await import('./issue.js')).registerIssue,
  csr: async () => (await import('./csr.js')).registerCsr,
  sign: async () => (await import('./csr.js')).registerCsr,
  revoke: async () => (await import('./revocation.js')).registerRevocation,
  crl: async () => (await import('./revocation.js')).registerRevocation,
  tidy: async () => (await import('./tidy.js')).registerTidy,
  token: async () => (await import('./token.js')).registerToken,
  bundle: async () => (await import('./bundle.js')).registerBundle,
  'check-bundle': async () => (await import('./bundle.js')).registerBundle,
  policy: async () => (await import('./policy.js')).registerPolicy,
  delegate: async () => (await import('./delegate.js')).registerDelegate,
  connect: async () => (await import('./client.js')).registerClient,
  'client-config': async () => (await import('./client.js')).registerClient,
  login: async () => (await import('./login.js')).registerLogin,
  enroll: async () => (await import('./login.js')).registerLogin,
  logout: async () => (await import('./login.js')).registerLogin,
  whoami: async () => (await import('./login.js')).registerLogin,
  gateway: async () => (await import('./gateway.js')).registerGateway,
  list: async () => (await import('./list.js')).registerList,
  inspect: async () => (await import('./inspect.js')).registerInspect,
};

/** The program for this command line: one group when argv[2] names one, else the full program. */
export async function programFor(argv: string[], options: { json?: boolean } = {}): Promise<Command> {
  const first = argv[2];
  const group = first !== undefined && Object.hasOwn(GROUPS, first) ? GROUPS[first] : undefined;
  if (!group) return (await import('./main.js')).createProgram(options);
  const program = baseProgram(options);
  (await group())(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `mcp-mtls --help | head`: a closed pipe is not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const json = argv.includes('--json');
  const program = await programFor(argv, { json });
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
