/** Addresses and ranges as 16 bytes: every spelling of one address matches one way; the ambiguous ones are refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, ipBytes16, parseCidr } from '../../src/util/cidr.js';

test('one address, every spelling Node or an operator writes: the same 16 bytes', () => {
  const v4 = ipBytes16('127.0.0.1')!.toString('hex');
  for (const a of ['::ffff:127.0.0.1', '::FFFF:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:0001']) assert.equal(ipBytes16(a)?.toString('hex'), v4, a);
  assert.equal(ipBytes16('2001:DB8::1')?.toString('hex'), ipBytes16('2001:db8:0:0:0:0:0:1')?.toString('hex'));
  // not that address: IPv4-compatible and NAT64 forms are other IPv6 addresses
  assert.notEqual(ipBytes16('::127.0.0.1')?.toString('hex'), v4);
  assert.notEqual(ipBytes16('64:ff9b::127.0.0.1')?.toString('hex'), v4);
  // ambiguous or not addresses at all
  for (const a of ['127.1', '010.0.0.1', '0x7f000001', '2130706433', '127.0.0.256', 'fe80::1%eth0', 'localhost', '', '1:2:3:4:5:6:7:8:9', '1::2::3']) assert.equal(ipBytes16(a), undefined, a);
});

test('ranges: IPv4 ranges match IPv4-mapped addresses; host bits, zones and bad prefixes refused', () => {
  const r = parseCidr('10.0.0.0/8');
  assert.ok(cidrContains(r, ipBytes16('10.200.3.4')!));
  assert.ok(cidrContains(r, ipBytes16('::ffff:10.200.3.4')!));
  assert.ok(!cidrContains(r, ipBytes16('11.0.0.1')!));
  assert.ok(!cidrContains(r, ipBytes16('::a00:1')!)); // ::10.0.0.1, IPv4-compatible: not mapped
  const one = parseCidr('127.0.0.2');
  assert.ok(cidrContains(one, ipBytes16('::ffff:127.0.0.2')!) && !cidrContains(one, ipBytes16('127.0.0.1')!));
  const v6 = parseCidr('fd00::/8');
  assert.ok(cidrContains(v6, ipBytes16('fd12:3456::1')!) && !cidrContains(v6, ipBytes16('fe80::1')!));
  const odd = parseCidr('192.168.0.0/23');
  assert.ok(cidrContains(odd, ipBytes16('192.168.1.255')!) && !cidrContains(odd, ipBytes16('192.168.2.0')!));
  assert.ok(cidrContains(parseCidr('::/0'), ipBytes16('8.8.8.8')!)); // all of IPv6 holds the mapped IPv4 space
  assert.ok(!cidrContains(parseCidr('0.0.0.0/0'), ipBytes16('::1')!));
  assert.throws(() => parseCidr('10.0.0.1/8'), (e: Error & { hint?: string }) => /bits are set after the prefix/.test(e.message) && e.hint === 'did you mean 10.0.0.0/8?');
  assert.throws(() => parseCidr('10.0.0.0/33'), /prefix length must be 0 to 32/);
  assert.throws(() => parseCidr('fe80::%eth0/10'), /zone index/);
  assert.throws(() => parseCidr('010.0.0.0/8'), /four decimal parts/);
  assert.throws(() => parseCidr('10.0.0.0/08'), /prefix length/);
});
