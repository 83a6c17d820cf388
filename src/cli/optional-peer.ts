/**
 * The MCP SDKs are optional peer dependencies: a command that needs one loads it on use, so
 * that every other command runs without it, and says how to get it when it is missing.
 */
import { MtlsError } from '../errors.js';

/**
 * Runs `load` (a dynamic import of code that needs `peer`) and turns "cannot find `peer`" into
 * an error that names the package and how to install it.
 */
export async function loadWithPeer<T>(load: () => Promise<T>, peer: string, command: string): Promise<T> {
  try {
    return await load();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(`'${peer}`)) {
      throw new MtlsError('DEPENDENCY_MISSING', `\`${command}\` needs ${peer}, which is not installed`, {
        // no `npx -p mcp-mtls` here: a name resolved by npx runs whatever the registry serves
        hint: `install it beside mcp-mtls (\`npm install ${peer}\`, or \`npm install -g ${peer}\` for a global mcp-mtls)`,
      });
    }
    throw e;
  }
}
