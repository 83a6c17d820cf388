/**
 * Which issuer URLs the CA talks to. An issuer's keys decide who gets a certificate, so they
 * are fetched over https only: with the system's CAs or the provider's `caFile`. Plain http is
 * accepted on a loopback address alone (127.0.0.0/8, ::1, localhost: a provider on this host,
 * tests, a local dev IdP), where nobody on the network can answer in its place.
 */

const LOOPBACK_HOSTS = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/i;

/** Whether `url` (parsed) is on a loopback host. */
export const isLoopbackUrl = (url: URL): boolean => LOOPBACK_HOSTS.test(url.hostname);

/** Why `value` cannot be an issuer (or a JWKS URL), or undefined when it can. */
export function issuerProblem(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'must be a URL such as https://idp.example.com/realms/acme';
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackUrl(u))) return 'must be an https:// URL (http:// only on a loopback address such as 127.0.0.1)';
  if (u.username || u.password) return 'must not contain a user name or password';
  if (u.search || u.hash || value.includes('?') || value.includes('#')) return 'must not have a query or fragment';
  return undefined;
}

/** The discovery document's URL: the issuer without a trailing slash, then /.well-known/openid-configuration (OpenID Connect Discovery 4). */
export const discoveryUrl = (issuer: string): string => `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
