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

export function parseBundleProfile(text: string, file: string): BundleProfile {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new MtlsError('BUNDLE_INVALID', `${file} is not YAML: ${(e as Error).message}`, { hint: 'make it again with `mcp-mtls bundle --format profile`' });
  }
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
