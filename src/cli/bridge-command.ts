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
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MtlsError } from '../errors.js';
import { VERSION } from '../version.js';

/**
 * The start of the command line a desktop app runs for the bridge: `command` and the `args`
 * before `connect URL --bundle FILE ...`, and the variables the entry sets (`env`).
 */
export interface BridgeRunner {
  /** `install`: this install by absolute paths; `npx`: npx runs exact versions from the registry */
  readonly kind: 'install' | 'npx';
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** what the entry runs, for `runs` in client-config's --json */
  readonly runs: Readonly<Record<string, unknown>>;
  /** one sentence for people: what the entry runs, and when to run client-config again */
  readonly note: string;
  readonly warnings: readonly string[];
}

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

/** The real path of this package's root, or undefined when this module is not inside one. */
function thisPackageRoot(): string | undefined {
  // src/cli/ and dist/cli/ are both two folders below the package root
  const here = fs.realpathSync(fileURLToPath(import.meta.url));
  return packageDirOf(here, 'mcp-mtls');
}

/** npm's npx cache (`~/.npm/_npx/<hash>/`) is no install: npm may clear it at any time. */
export function runsFromNpxCache(packageRoot = thisPackageRoot()): boolean {
  return packageRoot !== undefined && /[\\/]_npx[\\/]/.test(packageRoot);
}

/** As an entry's command: this install, `node /real/path/bin/mcp-mtls.js` (see {@link installedBridge}). */
export function installRunner(bridge: Pick<InstalledBridge, 'node' | 'bin' | 'sdk' | 'warnings'> = installedBridge()): BridgeRunner {
  return {
    kind: 'install',
    command: bridge.node,
    args: [bridge.bin],
    runs: { node: bridge.node, bin: bridge.bin, sdk: bridge.sdk },
    note: `It runs this install: ${bridge.bin} with ${bridge.node}; the bridge loads ${SDK} ${bridge.sdk.version} from ${bridge.sdk.dir}. After upgrading or moving mcp-mtls or node, run client-config again.`,
    warnings: bridge.warnings,
  };
}

/**
 * The SDK version an npx entry pins: the one this install loads when it has a 1.x, else the one
 * this release was built and tested with (its devDependency), so that it is an exact version.
 */
function sdkVersionToPin(): string {
  try {
    const entry = fileURLToPath(import.meta.resolve(`${SDK}/server/stdio.js`));
    const dir = packageDirOf(fs.realpathSync(entry), SDK);
    const version = dir ? (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version : undefined;
    if (version?.startsWith('1.')) return version;
  } catch {
    // not installed here: the tested version below
  }
  const pkg = createRequire(import.meta.url)('../../package.json') as { devDependencies?: Record<string, string> };
  const tested = /(\d+\.\d+\.\d+)/.exec(pkg.devDependencies?.[SDK] ?? '')?.[1];
  if (!tested) throw new MtlsError('NOT_FOUND', `cannot tell which ${SDK} version this mcp-mtls was tested with`, { hint: 'use --runner install (npm install -g mcp-mtls @modelcontextprotocol/sdk@1)' });
  return tested;
}

/**
 * As an entry's command: npx with exact versions, for a machine with only Node and npx:
 * `npx --yes --package mcp-mtls@THIS_VERSION --package @modelcontextprotocol/sdk@X mcp-mtls`.
 * The bridge's SDK is an optional peer, which `npx mcp-mtls` alone does not install, hence the
 * second package. Exact versions, not names or ranges: a version once published on npm cannot
 * be replaced, so every start runs what the first one fetched (and npx runs it from its cache
 * without asking the registry again). The command is the npx beside this node, by absolute
 * path, and the entry's PATH starts with node's folder: desktop apps start servers with a bare
 * PATH, and both npx and the mcp-mtls bin start with `#!/usr/bin/env node`.
 */
export function npxRunner(platform: NodeJS.Platform = process.platform): BridgeRunner {
  // Windows: `npx` by name (apps there start servers with the user's PATH, and a .cmd file by
  // absolute path needs a shell to start); untested here, as Windows is not at hand
  // elsewhere the npx beside this node, else (a node without npm beside it, as the npm registry's
  // `node` package is) the one this PATH finds, by absolute path either way: apps start servers
  // with a bare PATH, where a name could find another node's npx or none
  const beside = path.join(path.dirname(process.execPath), 'npx');
  const npx = platform === 'win32' ? 'npx' : fs.existsSync(beside) ? beside : (onPath('npx') ?? 'npx');
  return npxRunnerOf({ node: process.execPath, npx, mcpMtls: VERSION, sdk: sdkVersionToPin(), platform });
}

/** The first executable `name` in this process's PATH, by absolute path. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue; // a relative PATH entry would depend on the app's working folder
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** {@link npxRunner} for a given node, npx and versions (docs/clients.md's example is made with it). */
export function npxRunnerOf(o: { node: string; npx: string; mcpMtls: string; sdk: string; platform: NodeJS.Platform }): BridgeRunner {
  const nodeDir = (o.platform === 'win32' ? path.win32 : path.posix).dirname(o.node);
  const packages = [`mcp-mtls@${o.mcpMtls}`, `${SDK}@${o.sdk}`];
  return {
    kind: 'npx',
    command: o.npx,
    args: ['--yes', ...packages.flatMap((p) => ['--package', p]), 'mcp-mtls'],
    ...(o.platform === 'win32' ? {} : { env: { PATH: [nodeDir, '/usr/local/bin', '/usr/bin', '/bin'].filter((d, i, all) => all.indexOf(d) === i).join(path.posix.delimiter) } }),
    runs: { npx: o.npx, node: o.node, packages },
    note: `It runs ${packages.join(' and ')} through ${o.npx}: the first start downloads them (exact versions) into npx's cache, later starts run them from there. To upgrade, run client-config again with the new mcp-mtls.`,
    warnings: [],
  };
}

/**
 * This install of mcp-mtls as a pinned command. Throws MtlsError `DEPENDENCY_MISSING` when
 * the bridge could not load @modelcontextprotocol/sdk from here, `NOT_FOUND` when this package
 * has no bin (a broken install).
 */
export function installedBridge(): InstalledBridge {
  const packageRoot = thisPackageRoot();
  const bin = packageRoot ? path.join(packageRoot, 'bin', 'mcp-mtls.js') : undefined;
  if (!packageRoot || !bin || !fs.existsSync(bin)) {
    throw new MtlsError('NOT_FOUND', `cannot find the mcp-mtls bin beside ${fileURLToPath(import.meta.url)}`, { hint: 'reinstall mcp-mtls (npm install -g mcp-mtls), then run client-config again' });
  }
  // resolved from this module, as the bridge's own import is (same package, same node_modules walk)
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve(`${SDK}/server/stdio.js`));
  } catch (cause) {
    throw new MtlsError('DEPENDENCY_MISSING', `the bridge needs ${SDK} 1.x, which this mcp-mtls (${packageRoot}) cannot load`, {
      cause,
      hint: `install it beside mcp-mtls (\`npm install -g ${SDK}@1\` for a global mcp-mtls, else \`npm install ${SDK}@1\` in its project), then run client-config again; or write an entry that fetches both with npx: --runner npx`,
    });
  }
  const sdkDir = packageDirOf(fs.realpathSync(entry), SDK) ?? path.dirname(entry);
  const version = (JSON.parse(fs.readFileSync(path.join(sdkDir, 'package.json'), 'utf8')) as { version: string }).version;
  if (!version.startsWith('1.')) {
    throw new MtlsError('DEPENDENCY_MISSING', `the bridge needs ${SDK} 1.x; this mcp-mtls (${packageRoot}) loads ${version} from ${sdkDir}`, { hint: `install ${SDK}@1 beside mcp-mtls, then run client-config again` });
  }
  const warnings: string[] = [];
  // npx's cache is not an install: npm may remove it at any time, and the entry would break
  if (runsFromNpxCache(packageRoot)) warnings.push(`this mcp-mtls runs from npx's cache (${packageRoot}), which npm may clear: install it (npm install -g mcp-mtls ${SDK}@1) and run client-config again, or write an npx entry (--runner npx)`);
  return { node: process.execPath, bin: fs.realpathSync(bin), packageRoot: fs.realpathSync(packageRoot), sdk: { version, dir: sdkDir }, warnings };
}
