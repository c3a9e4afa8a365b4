// A real published package — date-fns 4: 1,426 ES modules, an index of hundreds of `export *`,
// locales and the fp build — run as a live tree through `livemod run`, beside Node running the
// same folder from disk, by the same driver. Both must print the same, namespaces included.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { cli } from './helpers/cli.ts';
import { tempDir } from './helpers/fs.ts';

const DRIVER = `
import { inspect } from 'node:util';
import * as dateFns from 'date-fns';
import { format, addDays, formatDistance, parseISO, eachDayOfInterval, isWeekend } from 'date-fns';
import { de, ja } from 'date-fns/locale';
import * as fp from 'date-fns/fp';

const day = parseISO('2024-01-31T12:00:00Z');
const lines = [
  [Object.keys(dateFns).length, Object.isExtensible(dateFns), Object.isSealed(dateFns), Object.isFrozen(dateFns)],
  [format(addDays(day, 1), 'yyyy-MM-dd'), formatDistance(day, addDays(day, 3)), format(day, 'PPPP', { locale: de }), format(day, 'PPPP', { locale: ja })],
  eachDayOfInterval({ start: day, end: addDays(day, 6) }).map((d) => (isWeekend(d) ? 'W' : '.')).join(''),
  [typeof fp.format, Object.keys(fp).length, fp.addDays(2)(day).toISOString()],
  Reflect.ownKeys(dateFns).slice(-2).map(String),
  Object.getOwnPropertyDescriptor(dateFns, 'format'),
  Object.prototype.toString.call(dateFns),
];
for (const line of lines) console.log(inspect(line, { depth: 3 }));
const fr = await import('date-fns/locale/fr');
console.log(inspect(fr, { depth: 0 }), fr === (await import('date-fns/locale/fr')));
console.log(inspect(await import('date-fns/constants')));
`;

test('date-fns, 1,426 modules, prints through livemod run exactly what Node prints for the same driver', { timeout: 120_000 }, (t) => {
  const source = dirname(createRequire(import.meta.url).resolve('date-fns/package.json'));
  const tree = join(tempDir(t), 'date-fns');
  cpSync(source, tree, { recursive: true });
  writeFileSync(join(tree, 'driver.js'), DRIVER);
  const env = { ...process.env, TZ: 'UTC' };
  const native = spawnSync(process.execPath, [join(tree, 'driver.js')], { cwd: tree, env, encoding: 'utf8' });
  assert.equal(native.status, 0, native.stderr);
  const live = cli(['run', join(tree, 'driver.js')], { cwd: tree, env });
  assert.equal(live.status, 0, live.stderr);
  assert.equal(live.stdout, native.stdout);
  assert.match(native.stdout, /\[Module: null prototype\]/);
});
