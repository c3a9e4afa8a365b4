// Where the service manager keeps its state: $LIVEMOD_HOME, else $XDG_STATE_HOME/livemod, else
// ~/.local/state/livemod (the XDG base directory spec: state that outlives a run but is not a
// user's document). Inside: services.db (SQLite), logs/ (each service's output, unless a service
// names its own files) and run/ (live services' control sockets).
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { ErrorCodes, LivemodError } from '../errors.ts';

export interface ServiceHome {
  readonly dir: string;
  readonly database: string;
  readonly logs: string;
  readonly run: string;
}

export function serviceHome(env: NodeJS.ProcessEnv = process.env): ServiceHome {
  const xdg = env.XDG_STATE_HOME;
  const dir = env.LIVEMOD_HOME || (xdg && isAbsolute(xdg) ? join(xdg, 'livemod') : join(homedir(), '.local', 'state', 'livemod'));
  return { dir, database: join(dir, 'services.db'), logs: join(dir, 'logs'), run: join(dir, 'run') };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A service name is a file name part (logs, sockets): letters, digits, `_`, `.`, `-`, at most 63. */
export function checkName(name: string): string {
  if (!NAME.test(name) || name.includes('..')) {
    throw new LivemodError('service', ErrorCodes.USAGE, `service name ${JSON.stringify(name.slice(0, 80))} is not allowed: use 1–63 letters, digits, '_', '.' or '-', starting with a letter or digit (it names log files)`, { name: name.slice(0, 80) });
  }
  return name;
}

/** The control socket of a live service (a Unix socket, mode 0600). */
export function controlSocket(home: ServiceHome, name: string): string {
  return join(home.run, `${name}.sock`);
}
