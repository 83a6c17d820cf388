/**
 * The bundle profile: one YAML file with everything a client needs to connect (server URL,
 * certificate chain, private key, CA). Versioned; documented in docs/bundle.md.
 */
import YAML from 'yaml';
import { z } from 'zod';
import { MtlsError } from '../errors.js';

export const BUNDLE_KIND = 'mcp-mtls/bundle';

export const BundleProfileSchema = z.strictObject({
  kind: z.literal(BUNDLE_KIND),
  version: z.literal(1),
  url: z.url().optional(),
  /** the CA's renewal endpoint (POST /renew), for clients that renew on their own */
  renewUrl: z.url().optional(),
  principal: z.string().optional(),
  notAfter: z.string().optional(),
  certificate: z.string().min(1),
  key: z.string().min(1),
  ca: z.string().min(1),
});

export type BundleProfile = z.infer<typeof BundleProfileSchema>;

export function formatBundleProfile(p: BundleProfile): string {
  const header = [
    '# mcp-mtls client bundle (see docs/bundle.md). It holds a private key: keep it private.',
    '# Load it with loadBundle() or `mcp-mtls connect URL --bundle FILE`.',
  ].join('\n');
  return `${header}\n${YAML.stringify(p, { lineWidth: 0, blockQuote: 'literal' })}`;
}

/** What a bundle is, for the error on a file that is none. */
export const WHAT_A_BUNDLE_IS = 'a bundle is a bundle profile (YAML with kind: mcp-mtls/bundle), a PKCS#12 file (.p12, .pfx) or a PEM folder (cert.pem, key.pem, ca.pem)';

function notABundle(file: string, text: string): MtlsError {
  const pem = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text);
  if (pem) {
    return new MtlsError('BUNDLE_INVALID', `${file} is not a bundle: it holds PEM (${pem[1]}); ${WHAT_A_BUNDLE_IS}`, {
      hint: pem[1] === 'CERTIFICATE' ? `make a bundle from it: \`mcp-mtls bundle ${file} --format profile --out FILE\`` : 'pass the bundle that `mcp-mtls bundle` wrote',
    });
  }
  return new MtlsError('BUNDLE_INVALID', `${file} is not a bundle: ${WHAT_A_BUNDLE_IS}`, { hint: 'pass the file or folder that `mcp-mtls bundle --out` wrote, or make one with `mcp-mtls bundle`' });
}

export function parseBundleProfile(text: string, file: string): BundleProfile {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    if (!text.includes(BUNDLE_KIND)) throw notABundle(file, text);
    throw new MtlsError('BUNDLE_INVALID', `${file} is not YAML: ${(e as Error).message}`, { hint: 'make it again with `mcp-mtls bundle --format profile`' });
  }
  // a text file, a list, a PEM file: no YAML map with a kind at all
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !('kind' in doc)) throw notABundle(file, text);
  const parsed = BundleProfileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || '(root)';
    const missing = issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined;
    throw new MtlsError('BUNDLE_INVALID', `${file}: ${missing ? `missing field "${field}"` : `${field}: ${issue.message}`}`, {
      hint: 'a bundle profile has kind, version, certificate, key and ca; make it again with `mcp-mtls bundle --format profile`',
    });
  }
  return parsed.data;
}
