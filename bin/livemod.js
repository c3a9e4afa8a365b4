#!/usr/bin/env node
// The `livemod` command. It runs the compiled build (dist/, made by `npm run build`, which
// `npm ci` runs): Node could strip types from src/ at load time, but that costs ~120 ms of
// start-up. In a checkout whose src/ changed after the last build, it runs src/ instead, so a
// stale build is never what runs.
import { existsSync, readdirSync, statSync } from 'node:fs';

const dist = new URL('../dist/cli/main.js', import.meta.url);
const src = new URL('../src/', import.meta.url);

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(`${entry.parentPath}/${entry.name}`).mtimeMs);
  }
  return latest;
}

const stale = !existsSync(dist) || (existsSync(src) && newest(src) > statSync(dist).mtimeMs);
await import(stale ? new URL('cli/main.ts', src).href : dist.href);
