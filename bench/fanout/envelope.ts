// The version a pushed manifest names, read without verifying it (the bench's clients verify
// nothing, as bench/fanout/clients.ts says): the signed manifest's top-level "version", its last
// key (canonical JSON sorts keys, src/snapshot/canonical.ts), found without parsing the document.
export function parseEnvelopeVersion(envelope: string): number | null {
  const at = envelope.lastIndexOf('"version":');
  if (at === -1) return null;
  const match = /^"version":(\d+)\}\}$/.exec(envelope.slice(at));
  return match ? Number(match[1]) : null;
}
