// The supervisor process's entry: `node <this file> NAME`, started detached by the service CLI.
// Its own entry (not a hidden CLI command) so a supervisor loads only what supervising needs —
// the state database, /proc and the log files — and the service starts sooner.
import module from 'node:module';
import { serviceHome } from './home.ts';
import { supervise } from './supervisor.ts';

module.enableCompileCache?.();
const name = process.argv[2];
if (!name) {
  process.stderr.write('[livemod service] the supervisor needs a service name\n');
  process.exit(2);
}
process.exitCode = await supervise(serviceHome(), name);
