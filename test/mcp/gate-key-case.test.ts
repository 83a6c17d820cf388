/**
 * The gate (src/mcp/gate.ts) and a server that reads JSON keys case-insensitively (review 2 of
 * issue 23). Go's encoding/json (mcp-go and other Go MCP servers behind the gateway) matches a
 * key to a field ignoring case, Unicode-folded ("paramſ" is "params", "NAME" is "name"), the last
 * match winning; C# System.Text.Json does with the web defaults. The gate reads exact keys, and
 * the gateway forwards every key: {"method":"ping","Method":"tools/call","params":{"name":
 * "delete_repo"}} was decided as a ping and, run by go1.19 encoding/json (checked by hand),
 * called delete_repo, so every policy rule and a delegation's tool globs could be walked around.
 * The gate now refuses (400, JSON-RPC -32600) a message with a key that is a JSON-RPC or MCP
 * member in another case, and, for the gateway (foldedKeys), two keys of one object equal but
 * for case.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gateMcpBody, unknownTargetAnswer } from '../../src/mcp/gate.js';
import { bob, POLICY } from '../support/public-reads.js';

// as the gateway calls it (src/gateway/request-body.ts): its upstreams may fold keys
const gate = (body: unknown, foldedKeys = true) => gateMcpBody(body, { policy: POLICY, identity: bob, headers: {}, hiddenAnswer: unknownTargetAnswer, foldedKeys });

test('a key that is a JSON-RPC or MCP member in another case, or two keys equal but for case, is refused', () => {
  const cases: [string, unknown][] = [
    ['Method beside method', { jsonrpc: '2.0', id: 1, method: 'ping', Method: 'tools/call', params: { name: 'deploy', arguments: {} } }],
    ['Method alone', { jsonrpc: '2.0', id: 1, Method: 'tools/call', params: { name: 'deploy', arguments: {} } }],
    ['NAME beside name', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', NAME: 'deploy', arguments: {} } }],
    ['paramſ (long s folds to s)', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: {} }, 'param\u017f': { name: 'deploy' } }],
    ['argument keys equal but for case', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: { q: 'public', Q: 'secret' } } }],
    ['in a batch', [{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: {} } }, { jsonrpc: '2.0', id: 2, method: 'ping', METHOD: 'tools/call', params: { name: 'deploy' } }]],
    ['a result member of a client answer', { jsonrpc: '2.0', id: 7, Result: {}, result: {} }],
  ];
  for (const [what, body] of cases) {
    const g = gate(body);
    assert.equal(g.kind, 'respond', `${what}: ${g.kind}`);
    assert.equal(g.kind === 'respond' && g.status, 400, what);
    assert.match(JSON.stringify(g.kind === 'respond' ? g.body : null), /-32600.*(in another case|but for case)/, what);
  }
  // ordinary messages, and an argument whose name is a member's in another case, pass
  assert.equal(gate({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: { Name: 'x', METHOD: 'y' } } }).kind, 'pass');
  assert.equal(gate({ jsonrpc: '2.0', method: 'notifications/initialized' }).kind, 'pass');
  assert.equal(gate({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }).kind, 'pass');
  // in-process (the SDK adapters, JavaScript): members in another case are refused, a tool's x and X arguments are its own
  assert.equal(gate({ jsonrpc: '2.0', id: 1, method: 'ping', Method: 'tools/call', params: { name: 'deploy' } }, false).kind, 'respond');
  assert.equal(gate({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: { x: 1, X: 2 } } }, false).kind, 'pass');
});
