/** loadPolicy: a policy file to a compiled Policy (the file read is the only I/O). */
import fs from 'node:fs';
import { MtlsError } from '../errors.js';
import { policyFromText, type CompileOptions, type Policy } from '../policy/compile.js';

export function loadPolicy(file: string, options: CompileOptions = {}): Policy {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MtlsError('FILE_NOT_FOUND', `cannot read policy ${file}`, { cause, hint: 'check the path; docs/policy.md shows a starting policy' });
  }
  return policyFromText(text, file, options); // positions are reported against the path as given
}
