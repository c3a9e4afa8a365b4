// The server's status page in a real headless Chromium (Debian's chromium, driven by
// playwright-core): after live clients swap, the page shows each client's version and last swap.
// `LIVEMOD_SCREENSHOT=docs/status-page.png npm run test:unit -- test/status-page.test.ts` refreshes
// the screenshot in the docs.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { SnapshotBuilder } from '../src/build/index.ts';
import { connect } from '../src/client/index.ts';
import { signSnapshot } from '../src/snapshot/index.ts';
import { startServer, within } from './helpers/server-fixtures.ts';
import { tempDir, writeFiles } from './helpers/fs.ts';

const CHROMIUM = '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? false : `Chromium is not installed (${CHROMIUM} is missing): apt-get install -y chromium`;

test('the status page shows every client, the version it runs and its last swap, in Chromium', { skip: missing, timeout: 90_000 }, async (t) => {
  const running = await startServer(t);
  const dir = tempDir(t);
  writeFiles(dir, { 'package.json': '{"name":"status-demo"}', 'main.js': 'export const value = 1; import.meta.hot.accept();', 'lib/format.js': 'export const shout = (text) => text + "!";' });
  const builder = new SnapshotBuilder(dir);
  let current = signSnapshot(builder.build().content, running.key);
  running.server.publish(current);
  const apps = await Promise.all([0, 1].map(() => connect(`${running.url}/`, { publicKey: running.key.publicKeyString, cache: tempDir(t), live: true, notice: () => {} })));
  t.after(() => Promise.all(apps.map((app) => app.close())));
  for (const app of apps) await app.import('main.js');
  const swaps = apps.map((app) => within(new Promise((resolve) => app.on('swap', resolve)), 10_000, 'the swap'));
  writeFiles(dir, { 'main.js': 'export const value = 2; import.meta.hot.accept();' });
  builder.invalidate(['main.js']);
  current = signSnapshot(builder.build().content, running.key, { previousVersion: current.manifest.version });
  running.server.publish(current);
  await Promise.all(swaps);
  const version = String(current.manifest.version);
  // The reports travel on the channel: wait until the server holds both.
  await within((async () => {
    for (;;) {
      const status = (await (await fetch(`${running.url}/status`)).json()) as { clients: { version?: number }[] };
      if (status.clients.filter((client) => String(client.version) === version).length === 2) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })(), 10_000, 'both status reports');

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
  const response = await page.goto(`${running.url}/`);
  assert.equal(response?.status(), 200);
  assert.equal(await page.title(), `livemod ${version}`);
  const rows = await page.locator('table').first().locator('tr').allInnerTexts();
  assert.equal(rows.length, 3, 'a header and one row per client');
  for (const row of rows.slice(1)) {
    assert.match(row, new RegExp(`\\b${version}\\b`), 'the version the client runs');
    assert.match(row, /applied\s+to \d+, 1 module, [\d.]+ ms/, 'its last swap');
  }
  assert.equal(await page.locator('b.ok').count(), 2);
  // The page runs no scripts: its CSP forbids them.
  assert.match(response!.headers()['content-security-policy'] ?? '', /default-src 'none'/);
  if (process.env.LIVEMOD_SCREENSHOT) await page.screenshot({ path: process.env.LIVEMOD_SCREENSHOT, fullPage: true });
});
