/**
 * Who may use the console: the operator's TLS client certificate, checked exactly as `ca serve`
 * checks one for /renew (peer.ts: chain to this CA, clientAuth, validity, identity extension,
 * the store's own copy, not revoked), so an operator without a usable certificate gets the
 * same 401/403 codes as from the servers. Then config.yaml's `console.view` / `console.act`
 * (policy subjects; default `{ roles: [ca-admin] }` for both): anyone else sees nothing.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Authority } from '../ca/authority.js';
import { HttpError } from '../ca/serve/http.js';
import { createPeerChecker } from '../ca/serve/peer.js';
import type { Identity } from '../identity/identity.js';
import { compileSubjects } from '../policy/subjects.js';

/** An operator the console let in: their identity, and whether they may revoke and create tokens. */
export interface Operator {
  readonly identity: Identity;
  readonly mayAct: boolean;
}

/** Who views and acts when config.yaml says nothing. */
export const DEFAULT_OPERATORS = { roles: ['ca-admin'] };

/** The check run on every console request: the operator, or an HttpError (401/403). */
export function createOperatorCheck(ca: Authority): (req: IncomingMessage) => Promise<Operator> {
  const peers = createPeerChecker(ca);
  const act = compileSubjects(ca.config.console?.act ?? DEFAULT_OPERATORS);
  const view = compileSubjects(ca.config.console?.view ?? DEFAULT_OPERATORS);
  return async (req) => {
    let identity: Identity;
    try {
      ({ identity } = await peers.check(req.socket as TLSSocket));
    } catch (e) {
      // the same status and code as /renew and the servers; the hints there speak of renewing
      if (e instanceof HttpError && (e.code === 'CERT_REQUIRED' || e.code === 'CERT_EXPIRED')) throw new HttpError(e.status, e.code, e.message, e.code === 'CERT_REQUIRED' ? 'open the console with your operator client certificate (a bundle of this CA imported into the browser)' : 'renew your operator certificate (mcp-mtls renew) and open the console again', e.headers, e.audit);
      throw e;
    }
    // the console is the operator's own: a delegated certificate acts for someone else, and may be
    // held by an agent runtime (a CSR's key the actor chose), so it never carries operator powers
    if (identity.actingFor) {
      throw new HttpError(403, 'CONSOLE_DELEGATED', `${identity.principal}'s certificate ${identity.serial} acts for ${identity.actingFor.principal}: a delegated certificate does not open the console`, "open the console with the operator's own certificate", {}, { principal: identity.principal, actingFor: identity.actingFor.principal });
    }
    const mayAct = act.matches(identity);
    if (!mayAct && !view.matches(identity)) {
      throw new HttpError(403, 'CONSOLE_FORBIDDEN', `${identity.principal} may not use the console`, 'ask a CA operator to name you under console.view (or console.act) in config.yaml', {}, { principal: identity.principal });
    }
    return { identity, mayAct };
  };
}

/** Refuses an operator who may view but not act. */
export function requireAct(op: Operator): void {
  if (!op.mayAct) throw new HttpError(403, 'CONSOLE_READ_ONLY', `${op.identity.principal} may view the console but not act in it`, 'ask a CA operator to name you under console.act in config.yaml');
}
