/**
 * A caller and a small policy shared by the policy and gate regressions: bob (a user of team
 * dev) and a policy letting anyone call `search` and read file:///srv/public/**, so every
 * other tool and resource is hidden from him.
 */
import type { Identity } from '../../src/identity/identity.js';
import { policyFromText } from '../../src/policy/compile.js';

export const bob: Identity = { principal: 'spiffe://acme.test/user/bob', trustDomain: 'acme.test', kind: 'user', id: 'bob', teams: ['dev'], roles: [], serial: '01', fingerprint: 'ab'.repeat(32), notAfter: new Date(Date.now() + 3_600_000) };
export const POLICY = policyFromText(`
version: 1
rules:
  - id: reads
    subjects: { any: true }
    tools: [search]
    resources: ["file:///srv/public/**"]
`);
