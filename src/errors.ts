/**
 * One error type for the whole project. `code` is stable: callers, tests and the CLI switch
 * on it, never on the message. `hint` says what to do next; the CLI prints it after the
 * message. Secrets (keys, passphrases) never go into any field.
 */

/** What kind of failure a code is, which decides the CLI's sysexits exit code. */
export type ErrorKind =
  | 'usage' // 64: the command line is wrong
  | 'data' // 65: an input file or value is malformed or refused by the profile
  | 'noinput' // 66: an input file or the CA folder does not exist
  | 'cantcreate' // 73: an output exists already or cannot be created
  | 'io' // 74: reading or writing failed
  | 'permission' // 77: a key is locked or a file is not accessible
  | 'config'; // 78: configuration is invalid

export const ERROR_CODES = {
  // usage and input values
  USAGE: 'usage',
  BAD_ARGUMENT: 'usage',
  BAD_DURATION: 'usage',
  BAD_KEY_TYPE: 'usage',
  BAD_NAME: 'data',
  BAD_TRUST_DOMAIN: 'data',
  BAD_BATCH_FILE: 'data',
  // CA folder and store
  CA_NOT_FOUND: 'noinput',
  CA_EXISTS: 'cantcreate',
  CA_KEY_MISSING: 'noinput',
  CA_KEY_LOCKED: 'permission',
  CA_CONFIG_INVALID: 'config',
  STORE_CORRUPT: 'data',
  STORE_LOCKED: 'io',
  OUTPUT_EXISTS: 'cantcreate',
  FILE_NOT_FOUND: 'noinput',
  IO_ERROR: 'io',
  NOT_FOUND: 'noinput',
  // issuance
  PROFILE_VIOLATION: 'data',
  TTL_EXCEEDS_ISSUER: 'data',
  CSR_INVALID: 'data',
  CSR_BAD_SIGNATURE: 'data',
  // revocation
  ALREADY_REVOKED: 'data',
  CRL_INVALID: 'data',
  // policy
  POLICY_INVALID: 'config',
  POLICY_TOO_LARGE: 'config',
  // bundles
  BUNDLE_INVALID: 'data',
  BUNDLE_PASSWORD: 'permission',
  // client renewal (POST /renew)
  RENEWAL_REFUSED: 'permission',
  RENEWAL_FAILED: 'io',
  // certificates and DER
  DER_MALFORMED: 'data',
  PEM_MALFORMED: 'data',
  CERT_INVALID: 'data',
  CERT_EXPIRED: 'data',
  CERT_NOT_YET_VALID: 'data',
  CERT_UNTRUSTED: 'data',
  KEY_INVALID: 'data',
  // identity profile reader (identity.md "Reader rules")
  IDENTITY_MALFORMED: 'data',
  IDENTITY_DUPLICATE_ATTRIBUTE: 'data',
  IDENTITY_BAD_VALUE_TYPE: 'data',
  IDENTITY_BAD_NAME: 'data',
  IDENTITY_FOREIGN_TRUST_DOMAIN: 'data',
  IDENTITY_URI_SAN_COUNT: 'data',
  IDENTITY_BAD_PRINCIPAL: 'data',
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MtlsError extends Error {
  override readonly name = 'MtlsError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get kind(): ErrorKind {
    return ERROR_CODES[this.code];
  }
}

export function isMtlsError(e: unknown, code?: ErrorCode): e is MtlsError {
  return e instanceof MtlsError && (code === undefined || e.code === code);
}
