/**
 * `mcp-mtls/ca`: the certificate authority as a library: create a CA, issue, renew and
 * revoke certificates, sign CRLs, list and inspect, write client bundles; with the folder
 * store (default), an in-memory store, or PostgreSQL. Pulls in no MCP or HTTP code.
 *
 * @packageDocumentation
 */
export { Authority, type AuthorityOptions, type PassphraseProvider, type ClientRequest, type ServerRequest, type IssueOptions, type IssuedCertificate, type Delivery } from '../ca/authority.js';
export { initCa, type InitOptions, type InitResult } from '../ca/init.js';
export { revokeCertificate, writeCrls, crlStatus, type RevokeResult, type CrlRunResult } from '../ca/revocation.js';
export { renewCertificate, type RenewOptions } from '../ca/renewal.js';
export { listCertificates, type CertificateEntry, type CertificateStatus, type ListFilter } from '../ca/list.js';
export { inspectCertificate, type InspectReport, type InspectContext } from '../ca/inspect.js';
export { loadCaConfig, type CaConfig } from '../ca/config.js';
export { parseDuration, formatDuration } from '../ca/duration.js';
export type { Store, StoreTransaction, IndexRecord, IssuedRecord, RevokedRecord, AuditEvent, CrlName } from '../ca/store/store.js';
export { FsStore, type FsStoreOptions } from '../ca/store/fs-store.js';
export { MemoryStore } from '../ca/store/memory-store.js';
export { writeBundle, BUNDLE_FORMATS, type BundleFormat, type BundleInput } from '../bundle/write.js';
