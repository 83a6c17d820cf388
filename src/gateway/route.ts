/**
 * Which route a gateway request goes to, and which upstream URL it names there: the route with
 * the longest matching prefix, the Streamable HTTP methods only, and a path that cannot leave
 * the route (see {@link pathBelowRoute}).
 */
import type { Dispatcher } from 'undici';
import type { Policy } from '../policy/compile.js';
import type { UpstreamCredentials } from './upstream-credentials.js';

/** One upstream MCP server behind the gateway; a request goes to the route with the longest matching prefix. */
export interface GatewayRoute {
  /** Path prefix, e.g. `/mcp`; the path below it is appended to the upstream's path. */
  readonly prefix: string;
  /** The upstream's Streamable HTTP endpoint. */
  readonly upstream: URL;
  /** The policy in force for this route, read per request and per message of an answer (e.g. `() => watcher.current()`). */
  readonly policy: () => Policy;
  /** For HTTPS upstreams: carries the gateway's own client certificate and trusted CA. Default: the gateway's plain connection pools. */
  readonly dispatcher?: Dispatcher;
  /** Headers per caller for the upstream (`Authorization: Bearer ...`), and the callers refused for want of one (upstream-credentials.ts). */
  readonly credentials?: UpstreamCredentials;
}

/** The methods of the Streamable HTTP transport; any other is answered 405. */
export function isTransportMethod(method: string | undefined): boolean {
  return method === 'GET' || method === 'POST' || method === 'DELETE';
}

/** Finds a URL's route; the routes are sorted once, longest prefix first, so the first match is the longest. */
export function routeFinder(routes: readonly GatewayRoute[]): (url: string) => GatewayRoute | undefined {
  const longestFirst = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
  return (url) => longestFirst.find((r) => url === r.prefix || url.startsWith(r.prefix.endsWith('/') ? r.prefix : `${r.prefix}/`) || url.startsWith(`${r.prefix}?`));
}

/**
 * The request path below the route, or undefined when it tries to leave it: dot segments
 * (plain or percent-encoded), encoded slashes and empty segments are refused, so the upstream
 * URL can never name another path or host (found in review: `//host` and `/../`); so are a
 * fragment, a `;` path parameter and percent-encoded unreserved characters, which could spell a
 * longer route's prefix.
 */
export function pathBelowRoute(url: string, prefix: string): string | undefined {
  const rest = url.slice(prefix.length);
  if (rest === '') return rest; // the route's own path, as most requests ask: nothing below it to check
  const [pathPart] = rest.split('?', 1) as [string];
  const segments = pathPart.split('/');
  // a fragment (never part of a request-target, RFC 9112; Node passes it on), a path parameter (`;x`, which Java servers
  // strip) or a percent-encoded letter, digit, - . _ ~
  // (the same path to a server that decodes it, RFC 3986 6.2.2.2) would spell a longer route's prefix another way, so that
  // this shorter route sends it on under its own policy and credentials (found in review: /mcp/files#x went to /mcp's upstream)
  if (rest.includes('#') || pathPart.includes(';') || /%(?:2d|3[0-9]|4[1-9a-f]|5[0-9af]|6[1-9a-f]|7[0-9ae])/i.test(pathPart)) return undefined;
  if (/%2e|%2f|%5c|\\/i.test(pathPart) || segments.some((seg, i) => seg === '..' || seg === '.' || (seg === '' && i > 0 && i < segments.length - 1))) return undefined;
  if (pathPart.startsWith('//')) return undefined;
  return rest;
}

/**
 * The upstream URL for the path below the route, or undefined when it would leave the
 * upstream's origin or path (a second check behind {@link pathBelowRoute}, on the parsed URL).
 */
export function upstreamUrlFor(route: GatewayRoute, below: string): URL | undefined {
  if (below === '') return route.upstream; // the route's own URL: nothing that could leave it
  const url = below === '' ? route.upstream : new URL(`${route.upstream.pathname.replace(/\/$/, '')}${below.startsWith('/') || below.startsWith('?') ? '' : '/'}${below}`, route.upstream.origin);
  if (url.origin !== route.upstream.origin || !url.pathname.startsWith(route.upstream.pathname.replace(/\/$/, ''))) return undefined;
  return url;
}
