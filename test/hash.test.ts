// SHA-256 two ways: the JavaScript one a warm start uses for its short inputs (snapshot/sha256.ts)
// must agree with node:crypto byte for byte, at every padding boundary, and sha256Hex must give
// the same answers before and after it switches to node:crypto.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { test } from 'node:test';
import { sha256HexJs } from '../src/snapshot/sha256.ts';

const bytesOf = (length: number, seed: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (i * 131 + seed * 17 + (i >> 3)) & 0xff);

test('the JavaScript SHA-256 agrees with node:crypto: known vectors, every length to 300 bytes, block and padding edges, larger inputs', () => {
  // FIPS 180-4 examples.
  assert.equal(sha256HexJs(new Uint8Array(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256HexJs(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256HexJs(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  for (let length = 0; length <= 300; length++) {
    const bytes = bytesOf(length, length);
    assert.equal(sha256HexJs(bytes), hash('sha256', bytes, 'hex'), `${length} bytes`);
  }
  for (const length of [511, 512, 513, 4095, 4096, 4097, 65_536, 100_003]) {
    const bytes = bytesOf(length, 7);
    assert.equal(sha256HexJs(bytes), hash('sha256', bytes, 'hex'), `${length} bytes`);
  }
  // A view into a larger buffer hashes only its own bytes.
  const whole = bytesOf(200, 3);
  assert.equal(sha256HexJs(whole.subarray(50, 150)), hash('sha256', whole.subarray(50, 150), 'hex'));
});

test('sha256Hex answers the same in JavaScript and through node:crypto, strings as UTF-8, and loads node:crypto only past its small-input budget', () => {
  // A fresh process: this one has node:crypto loaded already.
  const module = new URL('../src/snapshot/hash.ts', import.meta.url).href;
  const code = `
    import { sha256Hex } from ${JSON.stringify(module)};
    const loaded = () => process.moduleLoadList.some((name) => name.includes('crypto'));
    const inputs = ['', 'host-name', 'ünïcödé ✓ 😀', new Uint8Array(1024).fill(7), 'x'.repeat(900)];
    const small = inputs.map((input) => sha256Hex(input));
    const before = loaded();
    const big = sha256Hex(new Uint8Array(100000).fill(1));
    const after = inputs.map((input) => sha256Hex(input));
    console.log(JSON.stringify({ small, before, after, big, loaded: loaded() }));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout) as { small: string[]; before: boolean; after: string[]; big: string; loaded: boolean };
  assert.equal(out.before, false, 'short inputs are hashed without node:crypto');
  assert.equal(out.loaded, true, 'a large input loads node:crypto');
  assert.deepEqual(out.after, out.small, 'the same hashes either way');
  assert.deepEqual(out.small, ['', 'host-name', 'ünïcödé ✓ 😀', new Uint8Array(1024).fill(7), 'x'.repeat(900)].map((input) => hash('sha256', input, 'hex')));
  assert.equal(out.big, hash('sha256', new Uint8Array(100000).fill(1), 'hex'));
});
