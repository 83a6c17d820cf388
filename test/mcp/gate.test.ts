/**
 * The gate (gateMcpBody, src/mcp/gate.ts) on the shape of JSON-RPC messages: a request with
 * id null is a request, decided like any other, not a notification that passes unchecked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gateMcpBody, unknownTargetAnswer } from '../../src/mcp/gate.js';
import { bob, POLICY } from '../support/public-reads.js';

test('a request with id null is decided like any other request', () => {
  const gate = (body: unknown) => gateMcpBody(body, { policy: POLICY, identity: bob, headers: {}, hiddenAnswer: unknownTargetAnswer });
  const hidden = gate({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'deploy', arguments: {} } });
  assert.equal(hidden.kind, 'respond', 'id: null must not slip through as a notification');
  assert.match(JSON.stringify(hidden.kind === 'respond' ? hidden.body : null), /Tool deploy not found/);
  const batch = gate([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: {} } }, { jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'deploy', arguments: {} } }]);
  assert.equal(batch.kind, 'respond');
  assert.equal(gate({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'search', arguments: {} } }).kind, 'pass');
  assert.equal(gate({ jsonrpc: '2.0', method: 'notifications/initialized' }).kind, 'pass');
});
