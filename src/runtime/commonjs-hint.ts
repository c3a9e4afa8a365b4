// A live module that uses CommonJS's globals fails as it would in Node's ES modules, and says why
// as Node's own loader does (`require is not defined in ES module scope, you can use import
// instead`), with what livemod adds: a program's own files run as ES modules, and a CommonJS
// file can still be loaded natively through createRequire.
const COMMONJS_GLOBAL = /^(require|module|exports|__filename|__dirname) is not defined$/;

/** Explains, in place, a ReferenceError to one of CommonJS's globals thrown by a live module. */
export function explainCommonJsGlobal(error: unknown): void {
  if (!(error instanceof ReferenceError) || !COMMONJS_GLOBAL.test(error.message)) return;
  const before = `${error.name}: ${error.message}`;
  const message = `${error.message} in ES module scope${error.message.startsWith('require ') ? ', you can use import instead' : ''}; livemod runs a program's own .js and .ts files as ES modules: write import and export, or load a CommonJS file with createRequire(import.meta.url)`;
  try {
    // Read first: V8 formats the stack when it is first read, with the message of that moment.
    const stack = error.stack;
    error.message = message;
    if (typeof stack === 'string' && stack.startsWith(`${before}\n`)) error.stack = `${error.name}: ${message}${stack.slice(before.length)}`;
  } catch {
    // A frozen error keeps its own words.
  }
}
