// Preloaded into a child process (`node --import ./test/helpers/rss-probe.ts …`) so a test can
// measure the real peak memory of a real `livemod` run: at exit it writes its peak resident set
// size (process.resourceUsage().maxRSS, KiB) to the file named by LIVEMOD_TEST_RSS_FILE.
import { writeFileSync } from 'node:fs';

const file = process.env.LIVEMOD_TEST_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
