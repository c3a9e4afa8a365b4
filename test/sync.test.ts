// Sync against real hosts on 127.0.0.1: a real livemod server (batch route) and a small static
// file host with Range support (what nginx or a CDN does with a published snapshot), including
// hosts whose range support is missing or broken, and hosts that change bytes on the way.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createModuleServer } from '../src/server/index.ts';
import { generatePublisherKey, manifestBlobs, parsePublicKey, signSnapshot, type Manifest, type PublisherKey, type SnapshotContent, type VerifyKey } from '../src/snapshot/index.ts';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { fetchBlobs, fetchManifest, fetchSnapshot, type RequestEvent } from '../src/sync/index.ts';
import { planRanges } from '../src/sync/ranges.ts';
import { generateTree } from './helpers/tree.ts';
import { startHost } from './helpers/static-host.ts';
import { rejectsWithCode } from './helpers/assert.ts';

const MODULES = 2000;

let work: string;
let key: PublisherKey;
let verifyKey: VerifyKey;
let content: SnapshotContent;
let published: string;
let publishedManifest: Manifest;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'livemod-sync-'));
  generateTree(join(work, 'src'), MODULES, { seed: 11 });
  content = new SnapshotBuilder(join(work, 'src')).build().content;
  key = generatePublisherKey();
  verifyKey = parsePublicKey(key.publicKeyString);
  published = join(work, 'out');
  publishedManifest = (await publishSnapshot(content, key, published)).snapshot.manifest;
});

after(() => rmSync(work, { recursive: true, force: true }));

function recorder(): { events: RequestEvent[]; onRequest: (event: RequestEvent) => void } {
  const events: RequestEvent[] = [];
  return { events, onRequest: (event) => events.push(event) };
}

/** Every referenced blob is there and byte-identical to what was built. */
function assertComplete(manifest: Manifest, blobs: ReadonlyMap<string, Buffer>): void {
  const refs = manifestBlobs(manifest);
  assert.equal(blobs.size, refs.length);
  for (const ref of refs) {
    const bytes = blobs.get(ref.hash);
    assert.ok(bytes, `blob ${ref.hash} missing`);
    assert.ok(bytes.equals(content.blobs.get(ref.hash)!), `blob ${ref.hash} differs`);
  }
}


/** Every 10th module's code blob: scattered through the pack, well under half of it. */
function scatteredHashes(manifest: Manifest): string[] {
  return Object.keys(manifest.modules).sort().filter((_, index) => index % 10 === 0).map((path) => manifest.modules[path]!.blob.hash);
}

// ---------------------------------------------------------------------------------------------

describe('sync against a livemod server', () => {
  test('a cold fetch of a 2,000-module tree takes at most 3 requests and every blob verifies', async (t) => {
    const server = createModuleServer({ host: '127.0.0.1', port: 0 });
    t.after(() => server.close());
    const { url } = await server.listen();
    server.publish(signSnapshot(content, key));
    const { events, onRequest } = recorder();
    const result = await fetchSnapshot(url, verifyKey, { onRequest });
    assert.ok(result.requests <= 3, `${result.requests} requests`);
    assert.deepEqual(events.map((event) => [event.kind, event.method, event.status]), [['manifest', 'GET', 200], ['batch', 'POST', 200]]);
    assert.equal(result.requests, events.length);
    assertComplete(result.manifest, result.blobs);
    assert.equal(result.capabilities.batch, `${url}/batch`);
    assert.equal(result.capabilities.channel, `${url}/channel`);
    assert.ok(result.bytes > [...result.blobs.values()].reduce((total, blob) => total + blob.length, 0));
  });

  test('an unchanged manifest costs a 304, a new version is fetched', async (t) => {
    const server = createModuleServer({ host: '127.0.0.1', port: 0 });
    t.after(() => server.close());
    const { url } = await server.listen();
    const first = signSnapshot(content, key);
    server.publish(first);
    const fetched = await fetchManifest(url, { key: verifyKey });
    assert.equal(fetched.status, 'ok');
    assert.equal(fetched.etag, first.sealed.etag);
    assert.ok(fetched.bytes.equals(first.sealed.bytes));
    assert.deepEqual(await fetchManifest(url, { key: verifyKey, etag: fetched.etag }), { status: 'not-modified', capabilities: fetched.status === 'ok' ? fetched.capabilities : {} });

    server.publish(signSnapshot(content, key, { previousVersion: first.manifest.version }));
    const next = await fetchManifest(url, { key: verifyKey, etag: fetched.etag, minVersion: first.manifest.version });
    assert.equal(next.status, 'ok');
    assert.ok(next.manifest.version > first.manifest.version);
  });

  test('only the blobs asked for are fetched, in one batch', async (t) => {
    const server = createModuleServer({ host: '127.0.0.1', port: 0 });
    t.after(() => server.close());
    const { url } = await server.listen();
    server.publish(signSnapshot(content, key));
    const result = await fetchManifest(url, { key: verifyKey });
    assert.equal(result.status, 'ok');
    const wanted = scatteredHashes(result.manifest);
    const { events, onRequest } = recorder();
    const blobs = await fetchBlobs(url, result.manifest, wanted, result.capabilities, { onRequest });
    assert.deepEqual([...blobs.keys()], wanted);
    for (const hash of wanted) assert.ok(blobs.get(hash)!.equals(content.blobs.get(hash)!));
    assert.deepEqual(events.map((event) => event.kind), ['batch']);
  });

  test('a token server: 401 says to pass a token, and the token works', async (t) => {
    const server = createModuleServer({ host: '127.0.0.1', port: 0, tokens: ['s3cret-token'] });
    t.after(() => server.close());
    const { url } = await server.listen();
    server.publish(signSnapshot(content, key));
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_UNAUTHORIZED', /answered 401.*pass one/);
    const result = await fetchSnapshot(url, verifyKey, { headers: { authorization: 'Bearer s3cret-token' } });
    assertComplete(result.manifest, result.blobs);
  });

  test('a server with nothing published yet answers with its own code and message', async (t) => {
    const server = createModuleServer({ host: '127.0.0.1', port: 0 });
    t.after(() => server.close());
    const { url } = await server.listen();
    await rejectsWithCode(fetchManifest(url, { key: verifyKey }), 'ERR_LIVEMOD_NO_SNAPSHOT', /answered 503: no snapshot is published yet/);
  });
});

describe('sync against a static host', () => {
  test('a cold fetch of a 2,000-module tree takes at most 3 requests: the manifest and the pack', async (t) => {
    const host = await startHost(t, published);
    const { events, onRequest } = recorder();
    const result = await fetchSnapshot(host.url, verifyKey, { onRequest });
    assert.ok(result.requests <= 3, `${result.requests} requests`);
    assert.deepEqual(events.map((event) => [event.kind, event.status]), [['manifest', 200], ['pack', 200]]);
    assert.deepEqual(result.capabilities, {});
    assertComplete(result.manifest, result.blobs);
  });

  test('a cold fetch through ranges (wholePackRatio 1) is one range request, sliced and verified', async (t) => {
    const host = await startHost(t, published);
    const { events, onRequest } = recorder();
    const result = await fetchSnapshot(host.url, verifyKey, { onRequest, wholePackRatio: 1 });
    assert.equal(result.requests, 2);
    assert.equal(events[1]!.kind, 'ranges');
    assert.equal(events[1]!.status, 206);
    assertComplete(result.manifest, result.blobs);
    assert.equal(host.seen[1]!.acceptEncoding, 'identity');
  });

  test('scattered blobs come in ONE multi-range request on the pack', async (t) => {
    const host = await startHost(t, published);
    const { events, onRequest } = recorder();
    const wanted = scatteredHashes(publishedManifest);
    const blobs = await fetchBlobs(host.url, publishedManifest, wanted, {}, { onRequest, rangeGapBytes: 0 });
    assert.equal(blobs.size, wanted.length);
    for (const hash of wanted) assert.ok(blobs.get(hash)!.equals(content.blobs.get(hash)!));
    assert.equal(events.length, 1);
    assert.equal(events[0]!.kind, 'ranges');
    assert.equal(events[0]!.status, 206);
    assert.ok(events[0]!.ranges > 1, `${events[0]!.ranges} ranges`);
    assert.ok(host.seen[0]!.range!.length <= 4000, 'the Range header fits the default limit');
    assert.equal(host.seen[0]!.path, `/${publishedManifest.pack!.path}`);
  });

  test('a host that ignores Range answers with the whole pack, which is sliced', async (t) => {
    const host = await startHost(t, published, { ranges: 'ignore' });
    const { events, onRequest } = recorder();
    const wanted = scatteredHashes(publishedManifest);
    const blobs = await fetchBlobs(host.url, publishedManifest, wanted, {}, { onRequest });
    assert.equal(blobs.size, wanted.length);
    assert.deepEqual(events.map((event) => [event.kind, event.status]), [['ranges', 200]]);
  });

  for (const mode of ['refuse', 'broken'] as const) {
    test(`a host whose ranges ${mode === 'refuse' ? 'are refused (416)' : 'are malformed'} falls back to one GET per blob`, async (t) => {
      const host = await startHost(t, published, { ranges: mode });
      const { events, onRequest } = recorder();
      const wanted = scatteredHashes(publishedManifest).slice(0, 20);
      const blobs = await fetchBlobs(host.url, publishedManifest, wanted, {}, { onRequest, rangeGapBytes: 0 });
      assert.deepEqual([...blobs.keys()], wanted);
      for (const hash of wanted) assert.ok(blobs.get(hash)!.equals(content.blobs.get(hash)!));
      assert.equal(events[0]!.kind, 'ranges');
      assert.deepEqual(events.slice(1).map((event) => [event.kind, event.status]), wanted.map(() => ['blob', 200]));
    });
  }

  test('an unchanged manifest costs a 304', async (t) => {
    const host = await startHost(t, published);
    const first = await fetchManifest(host.url, { key: verifyKey });
    assert.equal(first.status, 'ok');
    assert.ok(first.etag);
    assert.deepEqual(await fetchManifest(`${host.url}manifest.json`, { key: verifyKey, etag: first.etag }), { status: 'not-modified', capabilities: {} });
  });

  test('a snapshot under a path prefix resolves every URL below it', async (t) => {
    const host = await startHost(t, work);
    const result = await fetchSnapshot(`${host.url}out`, verifyKey);
    assertComplete(result.manifest, result.blobs);
    assert.deepEqual(host.seen.map((request) => request.path), ['/out/manifest.json', `/out/${publishedManifest.pack!.path}`]);
  });

  test('no manifest at the URL: NOT_FOUND names it and what the URL must be', async (t) => {
    const host = await startHost(t, work);
    await rejectsWithCode(fetchManifest(host.url, { key: verifyKey }), 'ERR_LIVEMOD_NOT_FOUND', new RegExp(`no livemod manifest at ${host.url}manifest.json; check the URL`));
  });
});

describe('sync refuses what does not verify', () => {
  test('a manifest with one byte changed fails its signature check', async (t) => {
    const host = await startHost(t, published, {
      tamper: (path, bytes) => (path === '/manifest.json' ? Buffer.from(bytes.toString('latin1').replace('"tla":false', '"tla":true'), 'latin1') : bytes),
    });
    await rejectsWithCode(fetchSnapshot(host.url, verifyKey), 'ERR_LIVEMOD_SIGNATURE_INVALID', /fails its signature check/);
  });

  test('a manifest signed by another key is refused as the wrong key', async (t) => {
    const host = await startHost(t, published);
    const other = parsePublicKey(generatePublisherKey().publicKeyString);
    await rejectsWithCode(fetchSnapshot(host.url, other), 'ERR_LIVEMOD_WRONG_KEY', /not by the pinned key/);
  });

  test('a pack blob changed on the wire fails its hash check, naming the module', async (t) => {
    const [path, record] = Object.entries(publishedManifest.modules)[123]!;
    const host = await startHost(t, published, {
      tamper: (file, bytes) => {
        if (!file.startsWith('/pack/')) return bytes;
        const copy = Buffer.from(bytes);
        const at = record.blob.offset! + 5;
        copy[at] = copy[at]! ^ 0x20;
        return copy;
      },
    });
    const error = await rejectsWithCode(fetchSnapshot(host.url, verifyKey), 'ERR_LIVEMOD_HASH_MISMATCH', new RegExp(`for "${path}" from .*failed its hash check`));
    assert.equal((error as unknown as { details: { hash: string } }).details.hash, record.blob.hash);
  });

  test('a blob changed on the wire in the per-blob fallback fails its hash check too', async (t) => {
    const host = await startHost(t, published, {
      ranges: 'refuse',
      tamper: (file, bytes) => (file.startsWith('/blobs/') ? Buffer.concat([bytes.subarray(0, -1), Buffer.from('!')]) : bytes),
    });
    await rejectsWithCode(fetchBlobs(host.url, publishedManifest, scatteredHashes(publishedManifest).slice(0, 3), {}, { rangeGapBytes: 0 }), 'ERR_LIVEMOD_HASH_MISMATCH');
  });

  test('an expired manifest is refused', async (t) => {
    const out = join(work, 'expired');
    await publishSnapshot(content, key, out, { now: Date.now() - 2 * 3600_000, ttlMs: 3600_000 });
    const host = await startHost(t, out);
    await rejectsWithCode(fetchManifest(host.url, { key: verifyKey }), 'ERR_LIVEMOD_EXPIRED', /expired at/);
  });

  test('a manifest older than one accepted before is refused as a rollback', async (t) => {
    const host = await startHost(t, published);
    await rejectsWithCode(fetchManifest(host.url, { key: verifyKey, minVersion: publishedManifest.version + 1 }), 'ERR_LIVEMOD_ROLLBACK', /refused as a rollback/);
  });

  test('a hash the manifest does not reference is a usage error, before any request', async () => {
    await rejectsWithCode(fetchBlobs('http://127.0.0.1:9/', publishedManifest, ['0'.repeat(64)]), 'ERR_LIVEMOD_USAGE', /not referenced by manifest/);
  });
});

describe('range planning', () => {
  test('nearby blobs merge, and the gap widens until the Range header fits', () => {
    // 200 clusters of 15 blobs: too many ranges for one header, too far apart to become one.
    const blobs = Array.from({ length: 3000 }, (_, index) => ({ offset: Math.floor(index / 15) * 100_000 + (index % 15) * 1000, size: 100 }));
    assert.equal(planRanges(blobs.slice(0, 3), 0, 4000).header, 'bytes=0-99,1000-1099,2000-2099');
    assert.equal(planRanges(blobs.slice(0, 3), 900, 4000).header, 'bytes=0-2099');
    const plan = planRanges(blobs, 0, 4000);
    assert.ok(plan.header.length <= 4000, `${plan.header.length} characters`);
    assert.ok(plan.spans.length > 1);
    // Every blob lies inside one span.
    for (const blob of blobs) assert.ok(plan.spans.some((span) => span.start <= blob.offset && blob.offset + blob.size <= span.end));
  });
});

test('a key is an object with a key id and a key object (or parsePublicKey\'s getter, not called to check it); anything else is ERR_LIVEMOD_KEY_MISSING', async () => {
  const { requireKey } = await import('../src/sync/manifest.ts');
  const parsed = parsePublicKey(generatePublisherKey().publicKeyString);
  requireKey(parsed);
  requireKey({ keyId: parsed.keyId, publicKey: parsed.publicKey, publicKeyString: parsed.publicKeyString });
  for (const bad of [undefined, null, 'ed25519:x', {}, { keyId: parsed.keyId }, { keyId: parsed.keyId, publicKey: undefined }, { keyId: parsed.keyId, publicKey: 'a string' }, { keyId: 7, publicKey: parsed.publicKey }]) {
    assert.throws(() => requireKey(bad as unknown as VerifyKey), (error: NodeJS.ErrnoException) => error.code === 'ERR_LIVEMOD_KEY_MISSING', JSON.stringify(bad));
  }
});
