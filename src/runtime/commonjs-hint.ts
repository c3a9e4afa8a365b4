// A live module that uses CommonJS's globals fails as it would in Node's ES modules, and says why
// as Node's own loader does (`require is not defined in ES module scope, you can use import
// instead`), with what livemod adds: why the file is an ES module, and that a CommonJS file can
// still be loaded through createRequire. (A file Node runs as CommonJS is left to Node: native.ts.)
const COMMONJS_GLOBAL = /^(require|module|exports|__filename|__dirname) is not defined$/;

/** Explains, in place, a ReferenceError to one of CommonJS's globals thrown by a live module. */
export function explainCommonJsGlobal(error: unknown): void {
  if (!(error instanceof ReferenceError) || !COMMONJS_GLOBAL.test(error.message)) return;
  const before = `${error.name}: ${error.message}`;
  const message = `${error.message} in ES module scope${error.message.startsWith('require ') ? ', you can use import instead' : ''}; this file is an ES module (it has import or export syntax, or its package.json says "type": "module"), as Node takes it: write import, or load a CommonJS file with createRequire(import.meta.url)`;
  try {
    // Read first: V8 formats the stack when it is first read, with the message of that moment.
    const stack = error.stack;
    error.message = message;
    if (typeof stack === 'string' && stack.startsWith(`${before}\n`)) error.stack = `${error.name}: ${message}${stack.slice(before.length)}`;
  } catch {
    // A frozen error keeps its own words.
  }
}
