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
if (ca || cert) setGlobalDispatcher(new Agent({ connect: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(checkServerIdentity ? { checkServerIdentity } : {}) } }));
