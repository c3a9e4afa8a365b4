// Canonical JSON (the subset of RFC 8785 that manifests use): object keys sorted by UTF-16
// code units, no whitespace, strings and integers as JSON.stringify writes them. The same
// value always serialises to the same bytes, so a signature over it is reproducible.

/**
 * Serialises `value`. With `cache`, the text of every frozen object is remembered by identity:
 * a rebuild that reuses the module records of unchanged files re-serialises only the changed
 * ones. Only frozen objects are cached, because only they cannot change under the cache.
 */
export function canonicalJson(value: unknown, cache?: WeakMap<object, string>): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot hold the number ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      const cached = cache?.get(value);
      if (cached !== undefined) return cached;
      let text: string;
      if (Array.isArray(value)) {
        text = '[';
        for (let index = 0; index < value.length; index += 1) text += (index > 0 ? ',' : '') + canonicalJson(value[index], cache);
        text += ']';
      } else {
        const record = value as Record<string, unknown>;
        const keys = Object.keys(record).sort();
        text = '{';
        let first = true;
        for (const key of keys) {
          const item = record[key];
          if (item === undefined) continue;
          text += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item, cache)}`;
          first = false;
        }
        text += '}';
      }
      if (cache && Object.isFrozen(value)) cache.set(value, text);
      return text;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a value of type ${typeof value}`);
  }
}
