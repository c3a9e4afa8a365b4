// Sync against hosts that misbehave on purpose: endless bodies, stalls, trickles, batch frames
// that lie, capabilities that point elsewhere. Each is a real node:http server on 127.0.0.1:0;
// every wait is bounded by the sync call's own timeouts, so a regression fails, never hangs.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateRawSync, gzipSync } from 'node:zlib';
import { after, before, describe, test, type TestContext } from 'node:test';
import { batchFrameHeader } from '../src/protocol/index.ts';
import { generatePublisherKey, manifestBlobs, parsePublicKey, type Manifest, type VerifyKey } from '../src/snapshot/index.ts';
import { SnapshotBuilder, publishSnapshot } from '../src/build/index.ts';
import { fetchBlobs, fetchManifest, fetchSnapshot } from '../src/sync/index.ts';
import { generateTree } from './helpers/tree.ts';
import { rejectsWithCode } from './helpers/assert.ts';

let work: string;
let verifyKey: VerifyKey;
let manifest: Manifest;
let manifestBytes: Buffer;
let pack: Buffer;
let blobs: ReadonlyMap<string, Buffer>;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'livemod-sync-hostile-'));
  generateTree(join(work, 'src'), 30, { seed: 5 });
  const content = new SnapshotBuilder(join(work, 'src')).build().content;
  const key = generatePublisherKey();
  verifyKey = parsePublicKey(key.publicKeyString);
  const result = await publishSnapshot(content, key, join(work, 'out'));
  manifest = result.snapshot.manifest;
  manifestBytes = readFileSync(join(work, 'out', 'manifest.json'));
  pack = readFileSync(join(work, 'out', manifest.pack!.path));
  blobs = content.blobs;
});

after(() => rmSync(work, { recursive: true, force: true }));

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

async function serve(t: TestContext, handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (chunk: Buffer) => parts.push(chunk));
    req.on('end', () => handler(req, res, Buffer.concat(parts)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** Writes as fast as the client reads, until the client goes away. */
function writeForever(res: ServerResponse): void {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = (): void => {
    while (!res.destroyed && res.write(chunk));
  };
  res.on('drain', pump);
  pump();
}

/** The real manifest's header, up to where its signed bytes start: what a hostile body can begin with. */
function envelopeHeader(): Buffer {
  const marker = Buffer.from('],"signed":');
  return manifestBytes.subarray(0, manifestBytes.indexOf(marker) + marker.length);
}

function sendManifest(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': manifestBytes.length, ...headers });
  res.end(manifestBytes);
}


describe('bounded bodies', () => {
  test('an endless manifest body stops at maxBytes with TOO_LARGE', async (t) => {
    const url = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(envelopeHeader());
      writeForever(res);
    });
    await rejectsWithCode(fetchManifest(url, { key: verifyKey, maxBytes: 256 * 1024 }), 'ERR_LIVEMOD_TOO_LARGE', /sent more than 262144 bytes, over the 262144-byte limit for a manifest/);
  });

  test('an endless body that is not an envelope is refused at its first bytes', async (t) => {
    let sent = 0;
    const url = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x5b);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
      };
      res.on('drain', pump);
      pump();
    });
    await rejectsWithCode(fetchManifest(url, { key: verifyKey }), 'ERR_LIVEMOD_MANIFEST_INVALID', /does not start with a livemod envelope/);
    assert.ok(sent < 16 * 1024 * 1024, `the client stopped reading long before the 16 MiB limit (${sent} bytes written)`);
  });

  test('a declared Content-Length over the limit is refused before reading', async (t) => {
    const url = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(1 << 30) });
      res.write('{');
    });
    await rejectsWithCode(fetchManifest(url, { key: verifyKey, maxBytes: 1024 }), 'ERR_LIVEMOD_TOO_LARGE', /declares 1073741824 bytes/);
  });

  test('an endless pack stops at the pack size the manifest gives', async (t) => {
    const url = await serve(t, (req, res) => {
      if (req.url === '/manifest.json') return sendManifest(res);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      writeForever(res);
    });
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_TOO_LARGE', /for the snapshot's pack/);
  });

  test('an endless batch body stops after the last blob asked for', async (t) => {
    const url = await serve(t, (req, res, body) => {
      if (req.url === '/manifest.json') return sendManifest(res, { 'livemod-batch': '/batch' });
      const { hashes } = JSON.parse(body.toString()) as { hashes: string[] };
      res.writeHead(200, { 'content-type': 'application/vnd.livemod.batch' });
      for (const hash of hashes) res.write(Buffer.concat([Buffer.from(batchFrameHeader(hash, blobs.get(hash)!.length)), blobs.get(hash)!]));
      writeForever(res);
    });
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_TOO_LARGE', /that the manifest accounts for/);
  });
});

describe('timeouts', () => {
  test('a server that stalls after the headers fails with TIMEOUT within the stall bound', async (t) => {
    const url = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(manifestBytes.subarray(0, 10));
    });
    const started = performance.now();
    await rejectsWithCode(fetchManifest(url, { key: verifyKey, stallTimeoutMs: 200, timeoutMs: 20_000 }), 'ERR_LIVEMOD_TIMEOUT', /stalled: no data for 200 ms after 10 bytes/);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 10_000, `failed after ${elapsed} ms`);
  });

  test('a server that never answers fails with TIMEOUT before any headers', async (t) => {
    const url = await serve(t, () => {});
    await rejectsWithCode(fetchManifest(url, { key: verifyKey, stallTimeoutMs: 150 }), 'ERR_LIVEMOD_TIMEOUT', /no data for 150 ms before sending anything/);
  });

  test('a trickle that never stalls still ends at the total timeout', async (t) => {
    const url = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(envelopeHeader());
      const timer = setInterval(() => res.write('['), 10);
      res.on('close', () => clearInterval(timer));
    });
    await rejectsWithCode(fetchManifest(url, { key: verifyKey, timeoutMs: 300, stallTimeoutMs: 5_000 }), 'ERR_LIVEMOD_TIMEOUT', /did not finish within the 300 ms limit/);
  });

  test('the caller aborting ends the fetch with its own reason', async (t) => {
    const url = await serve(t, (_req, res) => res.writeHead(200).write('{'));
    const controller = new AbortController();
    const fetching = fetchManifest(url, { key: verifyKey, signal: controller.signal });
    controller.abort(new Error('user gave up'));
    await assert.rejects(fetching, /user gave up/);
  });
});

describe('batch responses that lie', () => {
  function batchServer(t: TestContext, frames: (hashes: string[]) => Buffer[]): Promise<string> {
    return serve(t, (req, res, body) => {
      if (req.url === '/manifest.json') return sendManifest(res, { 'livemod-batch': '/batch' });
      res.writeHead(200, { 'content-type': 'application/vnd.livemod.batch' });
      res.end(Buffer.concat(frames((JSON.parse(body.toString()) as { hashes: string[] }).hashes)));
    });
  }
  const frame = (hash: string, bytes: Buffer = blobs.get(hash)!, length = bytes.length): Buffer => Buffer.concat([Buffer.from(batchFrameHeader(hash, length)), bytes]);

  test('a blob changed on the wire fails its hash check, naming the module', async (t) => {
    const [path, record] = Object.entries(manifest.modules)[7]!;
    const url = await batchServer(t, (hashes) => hashes.map((hash) => {
      if (hash !== record.blob.hash) return frame(hash);
      const copy = Buffer.from(blobs.get(hash)!);
      copy[0] = copy[0]! ^ 1;
      return frame(hash, copy);
    }));
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_HASH_MISMATCH', new RegExp(`blob ${record.blob.hash.slice(0, 12)}… for "${path}" from ${url}batch failed its hash check`));
  });

  test('a frame for a hash not asked for is refused at its header', async (t) => {
    const url = await batchServer(t, (hashes) => [frame('f'.repeat(64), Buffer.alloc(10)), ...hashes.map((hash) => frame(hash))]);
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_PROTOCOL', /sends blob ffffffffffff…, which was not asked for/);
  });

  test('a frame longer than the manifest says is refused at its header', async (t) => {
    const url = await serve(t, (req, res) => {
      if (req.url === '/manifest.json') return sendManifest(res, { 'livemod-batch': '/batch' });
      const first = manifestBlobs(manifest)[0]!;
      res.writeHead(200, { 'content-type': 'application/vnd.livemod.batch' });
      // Announces a gigabyte and starts sending it: refused from the header alone.
      res.write(batchFrameHeader(first.hash, 1 << 30));
      writeForever(res);
    });
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_PROTOCOL', /announces 1073741824 bytes for blob .* which the manifest says is \d+ bytes/);
  });

  test('a blob sent twice is refused', async (t) => {
    const url = await batchServer(t, (hashes) => [frame(hashes[0]!), ...hashes.map((hash) => frame(hash))]);
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_PROTOCOL', /which was sent already/);
  });

  test('a response cut short names what is missing', async (t) => {
    const url = await batchServer(t, (hashes) => hashes.slice(0, -1).map((hash) => frame(hash)));
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_PROTOCOL', /ends with 1 blob\(s\) not sent \(the first for "/);
  });

  test('a response cut inside a blob says so', async (t) => {
    const url = await batchServer(t, (hashes) => [...hashes.slice(0, -1).map((hash) => frame(hash)), frame(hashes.at(-1)!).subarray(0, -3)]);
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_PROTOCOL', /ends inside blob/);
  });

  test('a server error keeps the server\'s code and message', async (t) => {
    const url = await serve(t, (req, res) => {
      if (req.url === '/manifest.json') return sendManifest(res, { 'livemod-batch': '/batch' });
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'ERR_LIVEMOD_BLOB_UNKNOWN', message: '3 requested blobs are in none of the last 8 snapshots; fetch /manifest.json again' } }));
    });
    await rejectsWithCode(fetchSnapshot(url, verifyKey), 'ERR_LIVEMOD_BLOB_UNKNOWN', /answered 404: 3 requested blobs .* fetch \/manifest.json again/);
  });
});

describe('encodings and redirects', () => {
  test('a manifest and a pack sent gzip- and br-encoded are decoded and verified', async (t) => {
    const encodings: string[] = [];
    const url = await serve(t, (req, res) => {
      encodings.push(String(req.headers['accept-encoding']));
      if (req.url === '/manifest.json') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        return void res.end(gzipSync(manifestBytes));
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'br' });
      res.end(brotliCompressSync(pack));
    });
    const result = await fetchSnapshot(url, verifyKey);
    assert.equal(result.blobs.size, manifestBlobs(manifest).length);
    assert.match(encodings[0]!, /gzip/, 'the client asks for compressed bodies, as fetch did');
  });

  test('stacked codings are undone last to first, and raw deflate is inflated as fetch inflates it', async (t) => {
    const url = await serve(t, (req, res) => {
      if (req.url === '/manifest.json') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip, br' });
        return void res.end(brotliCompressSync(gzipSync(manifestBytes)));
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'deflate' });
      res.end(deflateRawSync(pack));
    });
    const result = await fetchSnapshot(url, verifyKey);
    assert.equal(result.blobs.size, manifestBlobs(manifest).length);
  });

  test('an unknown coding is passed through, and the bytes then fail their check', async (t) => {
    const url = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'zstd-imaginary' });
      res.end(gzipSync(manifestBytes));
    });
    await rejectsWithCode(fetchManifest(url, { key: verifyKey }), 'ERR_LIVEMOD_MANIFEST_INVALID', /./);
  });

  test('a gzip bomb stops at the decoded limit, not the bytes on the wire', async (t) => {
    const bomb = gzipSync(Buffer.concat([envelopeHeader(), Buffer.alloc(64 * 1024 * 1024, 0x20)]));
    const url = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': bomb.length });
      res.end(bomb);
    });
    assert.ok(bomb.length < 1024 * 1024);
    await rejectsWithCode(fetchManifest(url, { key: verifyKey, maxBytes: 256 * 1024 }), 'ERR_LIVEMOD_TOO_LARGE', /sent more than 262144 bytes/);
  });

  test('a compressed body that ends before the response does: the sync completes and the connection is closed', async (t) => {
    let closed!: Promise<void>;
    const url = await serve(t, (req, res) => {
      closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.write(Buffer.concat([gzipSync(manifestBytes), Buffer.alloc(16)]));
      // …and never ends the response.
    });
    const fetched = await fetchManifest(url, { key: verifyKey });
    assert.equal(fetched.status, 'ok');
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the client kept the connection open')), 5000))]);
  });

  test('a body that claims gzip and is not fails with FETCH_FAILED, naming the URL', async (t) => {
    const url = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end('this is not gzip');
    });
    await rejectsWithCode(fetchManifest(url, { key: verifyKey }), 'ERR_LIVEMOD_FETCH_FAILED', /manifest\.json failed \(Z_DATA_ERROR\)/);
  });

  test('a redirect is followed, a loop of them is not', async (t) => {
    const url = await serve(t, (req, res) => {
      if (req.url === '/manifest.json') return void res.writeHead(301, { location: '/moved/manifest.json' }).end();
      if (req.url === '/moved/manifest.json') return sendManifest(res);
      res.writeHead(302, { location: req.url }).end();
    });
    const fetched = await fetchManifest(url, { key: verifyKey });
    assert.equal(fetched.status, 'ok');
    await rejectsWithCode(fetchManifest(`${url}loop/`, { key: verifyKey }), 'ERR_LIVEMOD_FETCH_FAILED', /failed \(ERR_TOO_MANY_REDIRECTS\)/);
  });

  test('a redirect to a scheme other than http(s) is refused', async (t) => {
    const url = await serve(t, (_req, res) => void res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    await rejectsWithCode(fetchManifest(url, { key: verifyKey }), 'ERR_LIVEMOD_FETCH_FAILED', /failed \(ERR_INVALID_REDIRECT\)/);
  });
});

describe('what the client will not follow', () => {
  test('a batch capability on another origin is ignored: the pack is used instead', async (t) => {
    const seen: string[] = [];
    const url = await serve(t, (req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/manifest.json') return sendManifest(res, { 'livemod-batch': 'http://127.0.0.2:9/batch', 'livemod-channel': '/channel' });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': pack.length });
      res.end(pack);
    });
    const result = await fetchSnapshot(url, verifyKey);
    assert.deepEqual(result.capabilities, { channel: `${url}channel` });
    assert.deepEqual(seen, ['GET /manifest.json', `GET /${manifest.pack!.path}`]);
    assert.equal(result.blobs.size, manifestBlobs(manifest).length);
  });

  test('a host that is not there fails with FETCH_FAILED naming the URL', async () => {
    // A port that was free a moment ago: nothing listens on it now.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rejectsWithCode(fetchManifest(`http://127.0.0.1:${port}/`, { key: verifyKey }), 'ERR_LIVEMOD_FETCH_FAILED', new RegExp(`GET http://127.0.0.1:${port}/manifest.json failed \\(ECONNREFUSED\\); check the URL`));
  });

  test('a base that is not an http(s) URL is a usage error', async () => {
    await rejectsWithCode(fetchManifest('not a url', { key: verifyKey }), 'ERR_LIVEMOD_USAGE', /is not a URL/);
    await rejectsWithCode(fetchManifest('file:///etc/', { key: verifyKey }), 'ERR_LIVEMOD_USAGE', /not an http\(s\) URL/);
    await rejectsWithCode(fetchBlobs('http://127.0.0.1:9/', manifest, [], {}, { timeoutMs: 0 }), 'ERR_LIVEMOD_USAGE', /timeoutMs is 0/);
  });
});
