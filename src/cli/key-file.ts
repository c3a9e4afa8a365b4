// The publisher's private key file, for the commands that sign (publish, serve).
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { parsePrivateKeyPem, type PublisherKey } from '../snapshot/index.ts';

/**
 * Reads a publisher's private key file, refusing one that group or others may read (as ssh
 * does): a key others can read may already be someone else's, and its signatures prove nothing.
 * The mode is read from the open file, so the check and the read see the same file.
 */
export function loadPrivateKey(path: string): PublisherKey {
  let pem: string;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    // Windows has no group/other mode bits to check: its ACLs are the user's to set.
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new LivemodError('cli', ErrorCodes.KEY_PERMISSIONS, `key file ${path} has mode ${mode}: group or others may read it, and a publisher key must be private; run \`chmod 600 ${path}\` (and if others did read it, make a new key with \`livemod keygen\`)`, { path, mode });
    }
    if (!stat.isFile()) throw new LivemodError('cli', ErrorCodes.KEY_INVALID, `${path} is not a file; pass the file \`livemod keygen\` wrote`, { path });
    if (stat.size > 64 * 1024) throw new LivemodError('cli', ErrorCodes.KEY_INVALID, `${path} is ${stat.size} bytes, far too large for a key file; pass the file \`livemod keygen\` wrote`, { path });
    pem = readFileSync(fd).toString('utf8');
  } catch (error) {
    if (error instanceof LivemodError) throw error;
    throw new LivemodError('cli', ErrorCodes.KEY_MISSING, `cannot read key file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); make one with \`livemod keygen --out ${path}\``, { path });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return parsePrivateKeyPem(pem, path);
}
