/**
 * The policy's name and URI patterns: the matcher lives in src/util/glob.ts so that the identity
 * reader (profile v1.2's tool globs) and the CA check the same syntax without importing policy/.
 */
export * from '../util/glob.js';
