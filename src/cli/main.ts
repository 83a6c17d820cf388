/** The `mcp-mtls` program: one file per command group, wired here (the whole program: help, completion, docs; entry.ts runs a command with its group only). */
import type { Command } from 'commander';
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
import { baseProgram } from './program-base.js';


export function createProgram(options: { json?: boolean } = {}): Command {
  const program = baseProgram(options);
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

/** the process entry lives in entry.ts (it loads one command group, not this whole program) */
export { main } from './entry.js';
