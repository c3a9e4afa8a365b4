// What a module request carries besides its specifier, checked as Node checks it: the arguments
// of `import(specifier, options)` (converted and validated inside the promise, never as a
// synchronous throw), and import attributes against the module they reach (JSON needs
// `type: 'json'`, a JavaScript module refuses it, unknown attributes are refused).
import { markLinkError } from '../errors.ts';

export type Attributes = Readonly<Record<string, string>>;

/** The arguments of `import()`: the specifier as a string, and the attributes of `options.with`. */
export function importArguments(specifier: unknown, options: unknown): { specifier: string; attributes: Attributes | undefined } {
  // A template literal is ToString: a Symbol throws, as the spec requires, where String() would not.
  const text = `${specifier as string}`;
  if (options === undefined) return { specifier: text, attributes: undefined };
  if ((typeof options !== 'object' && typeof options !== 'function') || options === null) throw new TypeError('The second argument to import() must be an object');
  const attributesObject = (options as { with?: unknown }).with;
  if (attributesObject === undefined) return { specifier: text, attributes: undefined };
  if ((typeof attributesObject !== 'object' && typeof attributesObject !== 'function') || attributesObject === null) throw new TypeError("The 'with' option must be an object");
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributesObject)) {
    if (typeof value !== 'string') throw new TypeError('Import attribute value must be a string');
    attributes[key] = value;
  }
  return { specifier: text, attributes: Object.keys(attributes).length > 0 ? attributes : undefined };
}

const SUPPORTED_TYPES = ['json'];

function codeError<T extends Error>(error: T, code: string): T {
  return markLinkError(Object.assign(error, { code }));
}

/**
 * Node's attribute check for a module at `url` (JSON when its path ends in .json): throws the
 * TypeError Node throws, with its code.
 */
export function checkAttributes(url: string, json: boolean, attributes: Attributes | undefined): void {
  const given = attributes ?? {};
  for (const key of Object.keys(given)) {
    if (key !== 'type') throw codeError(new TypeError(`Import attribute "${key}" with value "${given[key]}" is not supported in ${url}`), 'ERR_IMPORT_ATTRIBUTE_UNSUPPORTED');
  }
  const type = given.type;
  if (json && type === 'json') return;
  if (!json && type === undefined) return;
  if (json && type === undefined) throw codeError(new TypeError(`Module "${url}" needs an import attribute of "type: json"`), 'ERR_IMPORT_ATTRIBUTE_MISSING');
  if (!SUPPORTED_TYPES.includes(type!)) throw codeError(new TypeError(`Import attribute "type" with value "${type}" is not supported in ${url}`), 'ERR_IMPORT_ATTRIBUTE_UNSUPPORTED');
  throw codeError(new TypeError(`Module "${url}" is not of type "${type}"`), 'ERR_IMPORT_ATTRIBUTE_TYPE_INCOMPATIBLE');
}

/** A source-phase import of a module that has no source object (every JavaScript module). */
export function sourcePhaseError(url: string): SyntaxError {
  return codeError(new SyntaxError(`Source phase import object is not defined for module '${url}'`), 'ERR_SOURCE_PHASE_NOT_DEFINED');
}
