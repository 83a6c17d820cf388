/** Every example under examples/ runs with one command and checks its own output. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, run } from '../support/cli.js';

const EXAMPLES: [string, RegExp[]][] = [
  ['sdk1-server', [/alice sees: greet, restart/, /bob sees: greet/, /hello world, you are spiffe:\/\/acme\.test\/user\/bob/]],
  ['sdk2-server', [/alice sees: audit_log, time/, /bob sees: time/, /5 events for spiffe:\/\/acme\.test\/user\/alice/]],
  ['agent-client', [/run_tests: 213 passed/, /after revocation: the server refused the client certificate: certificate_revoked/]],
  ['gateway', [/alice sees list_incidents, page_oncall/, /bob sees list_incidents; list_incidents: 2 incidents \(asked by spiffe:\/\/acme\.test\/user\/bob\)/]],
  ['desktop-bridge', [/"command": "\/[^"]*node[^"]*"/, /through the bridge: read_notes -> standup at 10/]],
  ['two-tenants', [/spiffe:\/\/acme\.test\/user\/alice sees acme_billing, acme_deploy/, /spiffe:\/\/globex\.test\/user\/alice sees globex_billing/]],
];

for (const [name, expected] of EXAMPLES) {
  test(`example ${name}`, async () => {
    const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'examples', name, 'main.ts')]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /all checks passed/);
    assert.doesNotMatch(r.stdout, /^FAIL/m);
    for (const e of expected) assert.match(r.stdout, e);
  });
}
