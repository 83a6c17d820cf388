/**
 * Advisory lock keys of the PostgreSQL store. They are per database, and one database holds
 * one CA, so fixed keys suffice.
 */

/** CRL signing and revocation: serialised across processes (postgres-transaction.ts). */
export const LOCK_CRL = 0x6d63706d746c01n;
/** One migration at a time (postgres-schema.ts). */
export const LOCK_MIGRATE = 0x6d63706d746c02n;
/** The first key of the two-key advisory lock per renewed serial (32 bits, unlike the others). */
export const LOCK_RENEWAL = 0x6d63706d;
/** The first key of the two-key advisory lock per revoked principal (revokePrincipal and the ID-token check). */
export const LOCK_PRINCIPAL = 0x6d63706e;
