/**
 * The command a desktop app runs for the bridge: this installed mcp-mtls, pinned by absolute
 * paths (the node binary running now, and this package's bin, real path), never a package
 * name for npx to resolve. A name resolved at each start runs whatever the registry (or a
 * lookalike, or a typo squat, or a compromised publish) serves under it, with the user's
 * bundle path and key; a path runs exactly the code the user installed. The bridge loads
 * @modelcontextprotocol/sdk from that same install, so it is checked here, once, rather than
 * failing in an app's log later.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MtlsError } from '../errors.js';

/** What the written entry runs, and where the bridge's SDK is loaded from. */
export interface InstalledBridge {
  /** the absolute path of the node binary (process.execPath) */
  readonly node: string;
  /** the real path of this package's bin/mcp-mtls.js */
  readonly bin: string;
  /** the real path of this package's root */
  readonly packageRoot: string;
  /** the version of @modelcontextprotocol/sdk the bridge will load, and its folder */
  readonly sdk: { readonly version: string; readonly dir: string };
  /** things the user should know (e.g. an install that npm may delete) */
  readonly warnings: readonly string[];
}

const SDK = '@modelcontextprotocol/sdk';

/** The folder of the package that contains `file` (the nearest package.json named `name`). */
function packageDirOf(file: string, name: string): string | undefined {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === name) return dir;
      } catch {
        // not ours: keep looking
      }
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * This install of mcp-mtls as a pinned command. Throws MtlsError `DEPENDENCY_MISSING` when
 * the bridge could not load @modelcontextprotocol/sdk from here, `NOT_FOUND` when this package
 * has no bin (a broken install).
 */
export function installedBridge(): InstalledBridge {
  // src/cli/ and dist/cli/ are both two folders below the package root
  const here = fs.realpathSync(fileURLToPath(import.meta.url));
  const packageRoot = packageDirOf(here, 'mcp-mtls');
  const bin = packageRoot ? path.join(packageRoot, 'bin', 'mcp-mtls.js') : undefined;
  if (!packageRoot || !bin || !fs.existsSync(bin)) {
    throw new MtlsError('NOT_FOUND', `cannot find the mcp-mtls bin beside ${here}`, { hint: 'reinstall mcp-mtls (npm install -g mcp-mtls), then run client-config again' });
  }
  // resolved from this module, as the bridge's own import is (same package, same node_modules walk)
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve(`${SDK}/server/stdio.js`));
  } catch (cause) {
    throw new MtlsError('DEPENDENCY_MISSING', `the bridge needs ${SDK} 1.x, which this mcp-mtls (${packageRoot}) cannot load`, {
      cause,
      hint: `install it beside mcp-mtls (\`npm install -g ${SDK}@1\` for a global mcp-mtls, else \`npm install ${SDK}@1\` in its project), then run client-config again`,
    });
  }
  const sdkDir = packageDirOf(fs.realpathSync(entry), SDK) ?? path.dirname(entry);
  const version = (JSON.parse(fs.readFileSync(path.join(sdkDir, 'package.json'), 'utf8')) as { version: string }).version;
  if (!version.startsWith('1.')) {
    throw new MtlsError('DEPENDENCY_MISSING', `the bridge needs ${SDK} 1.x; this mcp-mtls (${packageRoot}) loads ${version} from ${sdkDir}`, { hint: `install ${SDK}@1 beside mcp-mtls, then run client-config again` });
  }
  const warnings: string[] = [];
  // npx's cache is not an install: npm may remove it at any time, and the entry would break
  if (/[\\/]_npx[\\/]/.test(packageRoot)) warnings.push(`this mcp-mtls runs from npx's cache (${packageRoot}), which npm may clear: install it (npm install -g mcp-mtls ${SDK}@1) and run client-config again`);
  return { node: process.execPath, bin: fs.realpathSync(bin), packageRoot: fs.realpathSync(packageRoot), sdk: { version, dir: sdkDir }, warnings };
}
