import fs from 'node:fs';
import { MtlsError } from '../errors.js';
import { policyFromText, type CompileOptions, type Policy } from '../policy/compile.js';

/**
 * Reads a policy file (YAML) and compiles it to a {@link Policy}; the file read is the only
 * I/O. To pick up edits while running, use {@link watchPolicy}.
 *
 * @param file - the path; error positions name it as given
 * @throws MtlsError `FILE_NOT_FOUND` when the file cannot be read (for any reason),
 *   `POLICY_INVALID` (every problem, with file:line:column) or `POLICY_TOO_LARGE`
 */
export function loadPolicy(file: string, options: CompileOptions = {}): Policy {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MtlsError('FILE_NOT_FOUND', `cannot read policy ${file}`, { cause, hint: 'check the path; docs/policy.md shows a starting policy' });
  }
  return policyFromText(text, file, options); // positions are reported against the path as given
}
