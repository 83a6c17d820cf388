/** Object identifiers used by the profile (identity.md) and RFC 5280, in one place. */
export const OID = {
  // attribute types in names
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  // certificate extensions
  subjectDirectoryAttributes: '2.5.29.9',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  cRLReason: '2.5.29.21',
  nameConstraints: '2.5.29.30',
  cRLDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  // extended key usages
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  // identity attributes (RFC 5755 4.4.4 and 4.4.5), and 4.4.2's accessIdentity (profile v1.1: delegation)
  accessIdentity: '1.3.6.1.5.5.7.10.2',
  group: '1.3.6.1.5.5.7.10.4',
  role: '2.5.4.72',
  // keys and signatures
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ed25519: '1.3.101.112',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  // CSR attributes
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;
