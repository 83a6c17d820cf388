/**
 * What a server answers a client certificate at `GET /`: 'ok' for a 200, otherwise the `error`
 * reason of the 401 body (certificate_revoked, revocation_unknown, ...). One fresh connection
 * per call, so each attempt is a full handshake with its own authentication.
 */
import { Agent, fetch } from 'undici';

export async function authOutcome(port: number, connect: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<string> {
  const agent = new Agent({ connect: { ...connect, servername: 'localhost' } });
  try {
    const res = await fetch(`https://127.0.0.1:${port}/`, { dispatcher: agent });
    const text = await res.text();
    return res.status === 200 ? 'ok' : (JSON.parse(text) as { error: string }).error;
  } finally {
    await agent.close();
  }
}
