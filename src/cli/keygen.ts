import type { Command } from 'commander';
import { openSync, writeSync, closeSync } from 'node:fs';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { generatePublisherKey, privateKeyToPem } from '../snapshot/index.ts';
import { createOutput } from './output.ts';

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('make a publisher key: writes the private key file (mode 0600) and prints the public key clients pin')
    .option('-o, --out <file>', 'private key file to write; never overwritten', 'livemod.key')
    .option('--json', 'print {"publicKey","keyId","file"} as JSON')
    .addHelpText('after', '\nExample:\n  livemod keygen --out publisher.key\n  livemod publish ./src --out ./public --key publisher.key')
    .action((flags: { out: string; json?: boolean }) => {
      const output = createOutput(flags.json === true);
      const key = generatePublisherKey();
      let fd: number;
      try {
        // 'wx': fail if the file exists, so a key is never overwritten by accident.
        fd = openSync(flags.out, 'wx', 0o600);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new LivemodError('keygen', ErrorCodes.KEY_EXISTS, `${flags.out} already exists and is never overwritten; remove it first or pass another --out`, { file: flags.out });
        throw new LivemodError('keygen', ErrorCodes.KEY_INVALID, `cannot create ${flags.out} (${code ?? 'error'}); check that its folder exists and is writable`, { file: flags.out });
      }
      try {
        writeSync(fd, privateKeyToPem(key));
      } finally {
        closeSync(fd);
      }
      output.info(`[livemod keygen] wrote private key ${flags.out} (key id ${key.keyId}); keep it secret. Public key, for clients (--key or LIVEMOD_KEY):`);
      output.result({ publicKey: key.publicKeyString, keyId: key.keyId, file: flags.out }, key.publicKeyString);
    });
}
