// The test262 runner's own rules, without running the suite: how a list file is read and
// rewritten by --update-expected, and how an outcome is judged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judge } from './test262/judge.ts';
import { entriesOf, formatList, parseList, updateExpected } from './test262/lists.ts';
import type { Outcome } from './test262/outcome.ts';
import { parseTest, type TestCase } from './test262/suite.ts';

const LIST = `# header comment

# section: namespaces
test/a.js  # reason a
test/b.js  # reason b

# section: builds
test/c.js  # reason c
`;

test('--update-expected drops entries that passed, keeps reasons, comments and order, and appends new failures marked NEW:', () => {
  const ran = new Map([
    ['test/a.js', { failed: false, error: '' }],
    ['test/c.js', { failed: true, error: 'still failing' }],
    ['test/z.js', { failed: true, error: '\n  SyntaxError: the first line that says something\n  at frame' }],
    ['test/d.js', { failed: true, error: 'TypeError: new' }],
    ['test/e.js', { failed: false, error: '' }],
  ]);
  const text = formatList(updateExpected(parseList(LIST, 'list'), ran));
  assert.equal(
    text,
    `# header comment

# section: namespaces
test/b.js  # reason b

# section: builds
test/c.js  # reason c

test/d.js  # NEW: TypeError: new
test/z.js  # NEW: SyntaxError: the first line that says something
`,
  );
});

test('--update-expected drops a section heading with the last entry of its section', () => {
  const ran = new Map([
    ['test/a.js', { failed: false, error: '' }],
    ['test/b.js', { failed: false, error: '' }],
  ]);
  assert.equal(formatList(updateExpected(parseList(LIST, 'list'), ran)), '# header comment\n\n# section: builds\ntest/c.js  # reason c\n');
});

test('--update-expected leaves entries of tests the run did not judge (filtered or skipped) alone', () => {
  const lines = parseList(LIST, 'list');
  assert.equal(formatList(updateExpected(lines, new Map())), formatList(lines));
});

test('an entry with node=N holds on those Node majors only; --update-expected leaves it alone elsewhere', () => {
  const lines = parseList('test/a.js node=24  # V8 13 only\ntest/b.js  # everywhere\n', 'list');
  assert.deepEqual([...entriesOf(lines, 24).keys()], ['test/a.js', 'test/b.js']);
  assert.deepEqual([...entriesOf(lines, 26).keys()], ['test/b.js']);
  const passedOn26 = new Map([['test/a.js', { failed: false, error: '' }]]);
  assert.equal(formatList(updateExpected(lines, passedOn26, 26)), 'test/a.js node=24  # V8 13 only\ntest/b.js  # everywhere\n');
  assert.equal(formatList(updateExpected(lines, passedOn26, 24)), 'test/b.js  # everywhere\n');
  assert.throws(() => parseList('test/a.js node=x  # r\n', 'x.txt'), /x\.txt:1: "node=x" is not a condition/);
});

test('a list entry without a reason, or listed twice, is refused with its line', () => {
  assert.throws(() => parseList('test/a.js\n', 'x.txt'), /x\.txt:1: "test\/a\.js" has no reason/);
  assert.throws(() => parseList('test/a.js  # one\ntest/a.js  # two\n', 'x.txt'), /x\.txt:2: "test\/a\.js" is listed twice/);
});

const outcome = (fields: Partial<Outcome>): Outcome => ({ settled: true, error: null, uncaught: [], unhandled: [], printed: [], ...fields });
const thrown = (constructorName: string) => ({ constructorName, message: 'm', detail: `${constructorName}: m` });
const testCase = (frontmatter: string): TestCase => parseTest('/suite/test/x.js', 'test/x.js', `/*---\n${frontmatter}\n---*/`);

test('a negative test passes only on an error of exactly the named constructor', () => {
  const negative = testCase('negative:\n  phase: parse\n  type: SyntaxError\nflags: [module]');
  assert.equal(judge(negative, outcome({ error: thrown('SyntaxError') })).passed, true);
  // What $DONOTEVALUATE() throws when the test's code ran after all, and what a refused build throws.
  assert.equal(judge(negative, outcome({ error: { constructorName: 'string', message: 'x', detail: 'x' } })).passed, false);
  assert.equal(judge(negative, outcome({ error: thrown('LivemodError') })).passed, false);
  assert.match(judge(negative, outcome({})).error, /expected SyntaxError in the parse phase, but the test completed/);
});

test('an async test passes only on Test262:AsyncTestComplete', () => {
  const asyncTest = testCase('flags: [async]');
  assert.equal(judge(asyncTest, outcome({ printed: ['Test262:AsyncTestComplete'] })).passed, true);
  assert.match(judge(asyncTest, outcome({ printed: ['Test262:AsyncTestFailure:Test262Error: no'] })).error, /^Test262Error: no$/);
  assert.match(judge(asyncTest, outcome({ unhandled: [thrown('TypeError')] })).error, /without calling \$DONE; unhandled rejection: TypeError/);
});

test('unhandled rejections do not fail a test; an uncaught exception or an import that never settles does', () => {
  const plain = testCase('flags: [module]');
  assert.equal(judge(plain, outcome({ unhandled: [thrown('Error')] })).passed, true);
  assert.match(judge(plain, outcome({ uncaught: [thrown('Test262Error')] })).error, /^uncaught: Test262Error/);
  assert.match(judge(plain, outcome({ settled: false })).error, /never settled/);
});

test('frontmatter: flags decide the goal; includes, features and negative are read', () => {
  const script = testCase('includes: [compareArray.js]\nfeatures:\n  - dynamic-import\n  - top-level-await');
  assert.equal(script.goal, 'script');
  assert.deepEqual(script.includes, ['compareArray.js']);
  assert.deepEqual(script.features, ['dynamic-import', 'top-level-await']);
  assert.equal(testCase('flags: [module, async]').goal, 'module');
  assert.throws(() => testCase('negative:\n  phase: early\n  type: SyntaxError'), /needs a phase/);
});
