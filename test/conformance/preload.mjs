// Loaded into the conformance suite's Node (`node --import`): every fetch of the suite presents the
// client certificate named by the environment, and trusts the test CA, through undici's global
// dispatcher (Node's own fetch reads the same global). Nothing else of the suite is touched.
//
// The server's certificate is checked against MCP_MTLS_CONFORMANCE_SERVERNAME (the URL's host,
// localhost here), not against the Host header: undici takes the TLS server name from a Host
// header when a request sets one, so the DNS rebinding scenario (Host: evil.example.com) would
// otherwise fail in the TLS handshake and never reach the server whose check it tests. A browser
// that a rebinding attack drives checks the certificate against the URL's name too.
import fs from 'node:fs';
import tls from 'node:tls';
import { Agent, setGlobalDispatcher } from 'undici';

const file = (name) => {
  const f = process.env[name];
  return f ? fs.readFileSync(f) : undefined;
};
const ca = file('MCP_MTLS_CONFORMANCE_CA');
const cert = file('MCP_MTLS_CONFORMANCE_CERT');
const key = file('MCP_MTLS_CONFORMANCE_KEY');
const servername = process.env.MCP_MTLS_CONFORMANCE_SERVERNAME;
const checkServerIdentity = servername ? (_host, peer) => tls.checkServerIdentity(servername, peer) : undefined;

// MCP_MTLS_CONFORMANCE_SESSION_VERSION=2025-11-25: a request announcing `MCP-Protocol-Version:
// 2025-03-26` announces that version instead. Suite 0.1.16's SSE scenarios send their raw requests
// with 2025-03-26 inside a 2025-11-25 session, and SDK 1.x sends the priming event, the retry
// field and allows closing a stream mid-call only to 2025-11-25 clients: unchanged, stream
// resumption is never exercised, against any target. The harness sets it for every 2025-11-25
// run, the bare server's included, so the comparison stays like for like.
const sessionVersion = process.env.MCP_MTLS_CONFORMANCE_SESSION_VERSION;
const fixVersion = (headers) => {
  const fix = (name, value) => (String(name).toLowerCase() === 'mcp-protocol-version' && value === '2025-03-26' ? sessionVersion : value);
  if (!headers) return headers;
  if (Array.isArray(headers)) {
    if (headers.length && Array.isArray(headers[0])) return headers.map(([n, v]) => [n, fix(n, v)]);
    return headers.map((v, i) => (i % 2 === 1 ? fix(headers[i - 1], v) : v));
  }
  if (typeof headers === 'object') return Object.fromEntries(Object.entries(headers).map(([n, v]) => [n, fix(n, v)]));
  return headers;
};
const rewrite = (dispatch) => (opts, handler) => dispatch({ ...opts, headers: fixVersion(opts.headers) }, handler);

if (ca || cert || sessionVersion) {
  const agent = new Agent({ connect: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(checkServerIdentity ? { checkServerIdentity } : {}) } });
  setGlobalDispatcher(sessionVersion ? agent.compose(rewrite) : agent);
}
