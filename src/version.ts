/**
 * The package version, read once from package.json (two folders up from src/ and from dist/),
 * so `mcp-mtls --version`, the API and the package cannot disagree.
 */
import { createRequire } from 'node:module';

/** This package's version (semver), as in its package.json. */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
