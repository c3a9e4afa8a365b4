// What the servers of a fleet read from the broker, held to strict shapes: anything else is
// dropped. Pure functions, no broker needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appToken, parseAnnouncement, parseBrokerUrl, parseFleetMember } from '../src/cluster/index.ts';

const member = { type: 'livemod/fleet-member@1', app: 'tools', role: 'replica', url: 'http://127.0.0.1:7071', version: 5, clients: 3, rssBytes: 1, uptimeMs: 2, pid: 3, host: 'h' };

test('fleet answers: a server\'s own words, refused when a field is not what a server sends', () => {
  assert.deepEqual(parseFleetMember(member), member);
  for (const forged of [
    { ...member, url: 'http://x/\u001b]0;pwned\u0007' },
    { ...member, url: 'javascript:alert(1)' },
    { ...member, url: 'http://x/ space' },
    { ...member, role: 'admin' },
    { ...member, clients: -1 },
    { ...member, version: 1.5 },
    { ...member, app: '' },
    { ...member, app: 'x'.repeat(129) },
    { ...member, type: 'livemod/fleet@1' },
    null, [], 'text', 42,
  ]) assert.equal(parseFleetMember(forged), null, JSON.stringify(forged));
  // Extra keys, __proto__ included, never reach the result.
  const polluted = parseFleetMember(JSON.parse(`{"__proto__":{"evil":1},${JSON.stringify(member).slice(1)}`));
  assert.ok(polluted);
  assert.equal((polluted as unknown as { evil?: number }).evil, undefined);
});

test('announcements: an app, a positive safe version and a sha256, or the reason it is not one', () => {
  const good = { type: 'livemod/announce@1', app: 'tools', version: 7, manifestHash: 'a'.repeat(64) };
  assert.deepEqual(parseAnnouncement(good), good);
  assert.equal(typeof parseAnnouncement({ ...good, version: 0 }), 'string');
  assert.equal(typeof parseAnnouncement({ ...good, version: 2 ** 53 }), 'string');
  assert.equal(typeof parseAnnouncement({ ...good, manifestHash: 'A'.repeat(64) }), 'string');
  assert.equal(typeof parseAnnouncement({ ...good, app: 7 }), 'string');
  assert.equal(typeof parseAnnouncement('{"type":"livemod/announce@1"}'), 'string');
});

test('app names become one subject token each, and two names never share one', () => {
  assert.equal(appToken('tools'), 'tools');
  assert.equal(appToken('a.b'), 'a~2e~b');
  assert.equal(appToken('a b>*'), 'a~20~b~3e~~2a~');
  assert.notEqual(appToken('a.b'), appToken('a~2e~b'));
  assert.match(appToken('@scope/päckage'), /^[A-Za-z0-9_~-]+$/);
});

test('broker URLs: hosts, ports, credentials; anything else is one line with ERR_LIVEMOD_CLUSTER', () => {
  assert.deepEqual(parseBrokerUrl('nats://127.0.0.1'), { servers: ['127.0.0.1:4222'], tls: false, display: 'nats://127.0.0.1:4222' });
  const full = parseBrokerUrl('tls://me:p%40ss@a:1,b:2');
  assert.deepEqual([full.servers, full.tls, full.user, full.pass, full.display], [['a:1', 'b:2'], true, 'me', 'p@ss', 'tls://a:1,b:2']);
  assert.equal(parseBrokerUrl('nats://tok@h:5').token, 'tok');
  for (const bad of ['', 'redis://h:1', 'nats://', 'nats://h:1/path', 'nats://h:99999', 'nats://us%zz:p@h', `nats://${'h'.repeat(3000)}`, 'nats://h\n:1', 'nats://h 1']) {
    assert.throws(() => parseBrokerUrl(bad), (error: Error & { code?: string }) => error.code === 'ERR_LIVEMOD_CLUSTER' && !error.message.includes('\n'), JSON.stringify(bad));
  }
});

test('Redis broker URLs: host, port, credentials and a DB number; anything else is one line with ERR_LIVEMOD_CLUSTER', async () => {
  const { parseRedisUrl } = await import('../src/cluster/index.ts');
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1'), { servers: ['127.0.0.1:6379'], tls: false, display: 'redis://127.0.0.1:6379' });
  const full = parseRedisUrl('rediss://me:p%40ss@h:7000/2');
  assert.deepEqual([full.servers, full.tls, full.user, full.pass, full.display], [['h:7000'], true, 'me', 'p@ss', 'rediss://h:7000/2']);
  for (const bad of ['redis://', 'redis://h:1/x', 'redis://h:1/1?a=b', 'redis://h:1/#x', 'redis://us%zz:p@h', 'redis:nothing', 'nats://h:1']) {
    assert.throws(() => parseRedisUrl(bad), (error: Error & { code?: string }) => error.code === 'ERR_LIVEMOD_CLUSTER' && !error.message.includes('\n'), JSON.stringify(bad));
  }
});
