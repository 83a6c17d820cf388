/**
 * `mcp-mtls/ca`: the certificate authority as a library: create a CA, issue, renew and
 * revoke certificates, sign CRLs, list and inspect, write client bundles; with the folder
 * store (default), an in-memory store, or PostgreSQL (the `pg` driver is loaded only when a
 * PostgreSQL store is opened); enrollment tokens. Pulls in no MCP or HTTP code: the online CA
 * is `mcp-mtls/ca/serve`.
 *
 * @packageDocumentation
 */
export { Authority, type AuthorityOptions, type PassphraseProvider, type ClientRequest, type ServerRequest, type IssueOptions, type IssuedCertificate, type Delivery } from '../ca/authority.js';
export { initCa, type InitOptions, type InitResult } from '../ca/init.js';
export { revokeCertificate, revokePrincipal, writeCrls, crlStatus, type RevokeResult, type RevokePrincipalResult, type CrlRunResult } from '../ca/revocation.js';
export type { RevocationReason } from '../x509/crl.js';
export { renewCertificate, type RenewOptions } from '../ca/renewal.js';
export { tidyIndex, tidyPlan, DEFAULT_TIDY_RETENTION, type TidyOptions, type TidyReport } from '../ca/tidy.js';
export { listCertificates, type CertificateEntry, type CertificateStatus, type ListFilter } from '../ca/list.js';
export { inspectCertificate, type InspectReport, type InspectContext } from '../ca/inspect.js';
export { loadCaConfig, type CaConfig } from '../ca/config.js';
export { parseDuration, formatDuration } from '../util/duration.js';
export type { Store, StoreTransaction, StoreSnapshot, PrincipalRevocation, IndexRecord, IssuedRecord, RevokedRecord, AuditEvent, CrlName, EnrollmentToken, StoredToken, TokenConsumeResult } from '../ca/store/store.js';
export { FsStore, type FsStoreOptions } from '../ca/store/fs-store.js';
export { MemoryStore } from '../ca/store/memory-store.js';
export { PostgresStore, migrate as migratePostgres, type PostgresStoreOptions } from '../ca/store/postgres-store.js';
export { openStore, type OpenStoreOptions } from '../ca/store/open.js';
export { createEnrollmentToken, listTokens, enrollWithToken, TokenRefused, type TokenRequest, type CreatedToken, type TokenListEntry, type TokenStatus } from '../ca/tokens.js';
export { writeBundle, BUNDLE_FORMATS, type BundleFormat, type BundleInput } from '../bundle/write.js';
