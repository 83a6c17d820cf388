/** What kind of failure a code is, which decides the CLI's sysexits exit code. */
export type ErrorKind =
  | 'usage' // 64: the command line is wrong
  | 'data' // 65: an input file or value is malformed or refused by the profile
  | 'noinput' // 66: an input file or the CA folder does not exist
  | 'cantcreate' // 73: an output exists already or cannot be created
  | 'unavailable' // 69: a server could not be reached, or is not the server of its URL
  | 'io' // 74: reading or writing failed
  | 'permission' // 77: a key is locked or a file is not accessible
  | 'config'; // 78: configuration is invalid

/**
 * Every error code of {@link MtlsError}, mapped to its {@link ErrorKind}. The keys are the
 * stable `code` values to switch on.
 */
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
  // a command needs an optional peer dependency (an MCP SDK) that is not installed
  DEPENDENCY_MISSING: 'config',
  STORE_CORRUPT: 'data',
  STORE_LOCKED: 'io',
  STORE_SCHEMA: 'config',
  STORE_UNAVAILABLE: 'io',
  SERIAL_TAKEN: 'io',
  OUTPUT_EXISTS: 'cantcreate',
  FILE_NOT_FOUND: 'noinput',
  IO_ERROR: 'io',
  NOT_FOUND: 'noinput',
  // issuance
  PROFILE_VIOLATION: 'data',
  TTL_EXCEEDS_ISSUER: 'data',
  // a request beyond config.yaml's issuance limits (limits.*: lifetime, teams, roles, names)
  LIMIT_EXCEEDED: 'data',
  CSR_INVALID: 'data',
  CSR_BAD_SIGNATURE: 'data',
  // an enrollment token that cannot enroll (ca serve POST /sign): unknown, used or expired
  TOKEN_REFUSED: 'permission',
  // an ID token refused at ca serve POST /login/sign (ca/oidc/refused.ts: the refusal's own code says why)
  OIDC_REFUSED: 'permission',
  // a delegation refused (mcp-mtls delegate, ca serve POST /delegate; docs/delegation.md)
  DELEGATION_REFUSED: 'permission',
  // revocation
  ALREADY_REVOKED: 'data',
  // online renewal: a revoked certificate, or one that was renewed already (a certificate renews once)
  CERT_REVOKED: 'data',
  CERT_RENEWED: 'data',
  CRL_INVALID: 'data',
  // policy
  POLICY_INVALID: 'config',
  POLICY_TOO_LARGE: 'config',
  // a resource URI that has no canonical form (encoded slashes or dot segments, control characters...)
  RESOURCE_URI_INVALID: 'data',
  // a tool handler asked for its caller on a request no mcp-mtls adapter authenticated
  NOT_AUTHENTICATED: 'permission',
  // a TLS server that may let clients renegotiate, so a connection's certificate cannot be trusted
  TLS_RENEGOTIATION_ALLOWED: 'config',
  // a client of this package asked for a cleartext http: server URL (no TLS, no client certificate)
  INSECURE_URL: 'usage',
  // a client of this package could not reach the server (down, wrong host or port), or the
  // server's certificate is not valid for its URL (another host name, another CA, expired)
  SERVER_UNREACHABLE: 'unavailable',
  SERVER_CERT_INVALID: 'unavailable',
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

/** A stable error code, such as `CERT_EXPIRED`: one key of {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The one error type of the whole project: every failure the library reports on purpose is
 * an `MtlsError`. `code` is stable: switch on it (or use {@link isMtlsError}), never on the
 * message. Secrets (keys, passphrases) never go into any field.
 */
export class MtlsError extends Error {
  override readonly name = 'MtlsError';
  /** What went wrong, stable across versions. */
  readonly code: ErrorCode;
  /** What to do next, for a person (the CLI prints it after the message); often undefined. */
  readonly hint: string | undefined;
  /** Machine-readable context, when there is any (e.g. `problems` for `POLICY_INVALID`). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  /**
   * @param code - the stable code
   * @param message - what went wrong, for a person
   * @param options - `hint`: what to do next; `details`: machine-readable context; `cause`:
   *   the underlying error, set as the standard `Error.cause`
   */
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

  /** The {@link ErrorKind} of {@link MtlsError.code}, which the CLI turns into its exit code. */
  get kind(): ErrorKind {
    return ERROR_CODES[this.code];
  }
}

/**
 * Whether `e` is an {@link MtlsError}, and, when `code` is given, one with that code. A type
 * guard, for `catch (e)` blocks: `if (isMtlsError(e, 'CERT_EXPIRED')) ...`.
 */
export function isMtlsError(e: unknown, code?: ErrorCode): e is MtlsError {
  return e instanceof MtlsError && (code === undefined || e.code === code);
}
