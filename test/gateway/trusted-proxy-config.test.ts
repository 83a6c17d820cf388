/** The gateway's trusted proxies: `--trusted-proxy CIDR=FORMAT` (+ `--trusted-proxy-header`) and gateway.yaml `trustedProxies`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trustedProxyFlags } from '../../src/cli/gateway.js';
import { GatewayConfigSchema } from '../../src/gateway/config.js';

test('--trusted-proxy flags become trustedProxies entries; a bad one is a usage error naming the formats', () => {
  assert.deepEqual(trustedProxyFlags(['10.0.0.0/8=nginx', 'fd00::/8=rfc9440'], 'x-client-cert'), [
    { from: '10.0.0.0/8', format: 'nginx', header: 'x-client-cert' },
    { from: 'fd00::/8', format: 'rfc9440' },
  ]);
  assert.deepEqual(trustedProxyFlags(['::ffff:10.1.2.3=alb'], undefined), [{ from: '::ffff:10.1.2.3', format: 'alb' }]);
  assert.throws(() => trustedProxyFlags(['10.0.0.0/8'], undefined), (e: Error & { code?: string }) => e.code === 'USAGE' && /CIDR=FORMAT with FORMAT one of rfc9440, xfcc, nginx, alb, traefik/.test(e.message));
  assert.throws(() => trustedProxyFlags(['10.0.0.0/8=haproxy'], undefined), /FORMAT one of/);
  assert.throws(() => trustedProxyFlags(['10.0.0.0/8=xfcc'], 'x-client-cert'), /no --trusted-proxy uses it/);
});

test('gateway.yaml trustedProxies: formats checked, unknown keys refused', () => {
  const base = { listen: '127.0.0.1:0', tls: { cert: 'c', key: 'k', pki: 'p' }, routes: [{ path: '/mcp', upstream: 'http://127.0.0.1:1/mcp', policy: 'p.yaml' }] };
  const ok = GatewayConfigSchema.parse({ ...base, trustedProxies: [{ from: ['10.0.0.0/8'], format: 'xfcc', principal: 'spiffe://acme.test/service/envoy' }] });
  assert.equal(ok.trustedProxies?.[0]?.format, 'xfcc');
  assert.equal(GatewayConfigSchema.safeParse({ ...base, trustedProxies: [{ from: '10.0.0.0/8', format: 'haproxy' }] }).success, false);
  assert.equal(GatewayConfigSchema.safeParse({ ...base, trustedProxies: [{ from: '10.0.0.0/8', format: 'nginx', cidr: 'x' }] }).success, false);
});
