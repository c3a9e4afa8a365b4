// The service manager's operations, as the CLI calls them. Each opens the state database, first
// reconciles (a service that should run but whose supervisor is gone gets a new supervisor, which
// adopts the service if it still runs, or starts it again), then acts. What it reports is verified
// against the processes themselves (pid, start time, boot: proc.ts), never taken from the record.
import { accessSync, closeSync, constants, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { SQLInputValue } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, LivemodError } from '../errors.ts';
import { ownEntry } from '../own.ts';
import { askControl } from './control.ts';
import { ServiceDb, type RestartPolicy, type ServiceRecord } from './db.ts';
import { checkName, controlSocket, serviceHome, type ServiceHome } from './home.ts';
import { dropExitFile, liveWaiter, startWaited } from './launch.ts';
import { openLog } from './logs.ts';
import { currentBoot, identify, isRunning, signalGroup } from './proc.ts';

export type ServiceState = 'running' | 'starting' | 'backoff' | 'stopped' | 'exited' | 'errored' | 'dead';

export interface ServiceView {
  readonly name: string;
  /** Verified: `running` only when the recorded pid is the process started (start time, boot). */
  readonly state: ServiceState;
  readonly pid: number | null;
  readonly uptimeMs: number | null;
  readonly restarts: number;
  readonly lastExit: string | null;
  readonly supervisor: { readonly pid: number | null; readonly running: boolean };
  readonly command: readonly string[];
  readonly cwd: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly restart: RestartPolicy;
  readonly runUrl: string | null;
  /** For a running live (`--run`) service: the version it runs and its last swap, from the service itself. */
  live?: { readonly version: number; readonly lastSwap: unknown } | { readonly error: string };
}

export interface AddSpec {
  readonly name: string;
  readonly command: readonly string[];
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly stdout?: string;
  readonly stderr?: string;
  readonly restart?: RestartPolicy;
  readonly killTimeoutMs?: number;
  readonly maxLogBytes?: number;
  readonly runUrl?: string;
  /** The environment the service runs with (plus `env`); default: this process's. */
  readonly baseEnv?: Readonly<Record<string, string>>;
}

const START_WAIT_MS = 10_000;
/**
 * A supervisor that adopts a first run the CLI just started begins this much later (`sleep`, then
 * exec: the same pid). Its Node start would otherwise take CPU from the service's own start, which
 * measured ~40 ms later to first answer on this 2-core machine; until then there is nothing for it
 * to do (a run that ends meanwhile leaves its status in the exit file).
 */
const SUPERVISOR_DEFER_MS = 250;
const SUPERVISOR_EXIT_WAIT_MS = 3000;
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

function unknown(name: string): LivemodError {
  return new LivemodError('service', ErrorCodes.SERVICE_UNKNOWN, `there is no service ${JSON.stringify(name)}; see \`livemod service list\`, or add it with \`livemod service add ${name} -- COMMAND\``, { name });
}

export class ServiceManager {
  readonly home: ServiceHome;
  readonly db: ServiceDb;

  constructor(home: ServiceHome = serviceHome()) {
    this.home = home;
    this.db = ServiceDb.open(home);
  }

  close(): void {
    this.db.close();
  }

  private record(name: string): ServiceRecord {
    const record = this.db.get(checkName(name));
    if (!record) throw unknown(name);
    return record;
  }

  /**
   * Services that should run and have no live supervisor get one (which adopts or restarts them).
   * `except` is left alone: the service the command itself starts (a supervisor started here would
   * apply a first run's old status before the command's start, and could undo it).
   */
  reconcile(except?: string): string[] {
    const adopted: string[] = [];
    for (const record of this.db.list()) {
      if (record.name === except || record.desired !== 'running' || record.status === 'errored' || record.status === 'exited') continue;
      if (this.ensureSupervisor(record.name, false)) adopted.push(record.name);
    }
    return adopted;
  }

  /**
   * Starts a supervisor for the service unless a live one exists; says whether it started one.
   * With `wish`, the state columns a start sets first. With `startRun`, a service that does not
   * run is started here first, under its waiter, and the supervisor adopts that run (launch.ts):
   * the service does not wait for the supervisor's boot.
   */
  private ensureSupervisor(name: string, startRun: boolean, wish?: Readonly<Record<string, SQLInputValue>>): boolean {
    return this.db.transaction(() => {
      // A start records its wish in the transaction that acts on it: a start that fails (the
      // service's folder gone) leaves the record as it was, and no stop can come in between.
      if (wish) this.db.update(name, wish);
      const record = this.db.get(name);
      if (!record || isRunning({ pid: record.supervisorPid, start: record.supervisorStart, boot: record.boot })) return false;
      if (record.desired !== 'running') return false;
      // A service pid recorded in an earlier boot names no process of this one.
      const rebooted = record.boot !== null && record.boot !== currentBoot();
      let runs = !rebooted && isRunning({ pid: record.pid, start: record.pidStart, boot: record.boot });
      // A first run whose CLI was killed before recording it still has its waiter: the supervisor
      // adopts it (through the journal), and no second run is started beside it.
      if (startRun && !runs && liveWaiter(this.home, name) !== null) runs = true;
      const startedAt = Date.now();
      const run = startRun && !runs ? startWaited(this.home, record) : null;
      const pid = this.spawnSupervisor(name, run !== null ? SUPERVISOR_DEFER_MS : 0);
      // Recorded in the same transaction, so a concurrent CLI call sees it and starts no second one.
      this.db.update(name, {
        supervisor_pid: pid,
        supervisor_start: identify(pid)?.start ?? null,
        boot: currentBoot(),
        status: runs || run !== null ? 'running' : 'starting',
        ...(run !== null ? { pid: run.pid, pid_start: run.start } : rebooted || (startRun && !runs) ? { pid: null, pid_start: null } : {}),
        ...(startRun && !runs ? { started_at: startedAt } : {}),
      });
      return true;
    });
  }

  /** Starts the supervisor process (after `deferMs`, through sh's sleep then exec, when given); its pid. */
  private spawnSupervisor(name: string, deferMs = 0): number {
    mkdirSync(this.home.logs, { recursive: true, mode: 0o700 });
    const log = openLog(join(this.home.logs, `${name}.supervisor.log`), name);
    // Taken here, not imported: `service list` and `status` never spawn, and an ESM import of
    // node:child_process (its facade reads every export, and it loads net and dgram) costs them.
    const { spawn } = process.getBuiltinModule('node:child_process');
    const command = [process.execPath, fileURLToPath(ownEntry('service/supervisor-entry')), name];
    const deferred = deferMs > 0 ? ['/bin/sh', '-c', `sleep ${(deferMs / 1000).toFixed(2)}; exec "$@"`, 'livemod-supervisor', ...command] : command;
    const child = spawn(deferred[0]!, deferred.slice(1), {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: this.home.dir,
      env: { ...process.env, LIVEMOD_HOME: this.home.dir },
    });
    closeSync(log);
    child.unref();
    if (child.pid === undefined) throw new LivemodError('service', ErrorCodes.SERVICE_START, `cannot start the supervisor of ${name} (${process.execPath} did not spawn)`, { name });
    return child.pid;
  }

  async add(spec: AddSpec, options: { start?: boolean } = {}): Promise<ServiceView> {
    const name = checkName(spec.name);
    if (spec.command.length === 0 || spec.command[0] === '') throw new LivemodError('service', ErrorCodes.USAGE, `service ${name} has no command: write it after --, e.g. \`livemod service add ${name} -- node server.js\``, { name });
    const cwd = resolve(spec.cwd ?? process.cwd());
    if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new LivemodError('service', ErrorCodes.USAGE, `--cwd ${cwd} is not a folder`, { cwd });
    checkExecutable(spec.command[0]!, cwd, spec.env?.PATH ?? process.env.PATH ?? '');
    mkdirSync(this.home.logs, { recursive: true, mode: 0o700 });
    const stdout = spec.stdout ? resolve(cwd, spec.stdout) : join(this.home.logs, `${name}.out.log`);
    const stderr = spec.stderr ? resolve(cwd, spec.stderr) : join(this.home.logs, `${name}.err.log`);
    // Opened now, so an unwritable path is refused before anything is recorded.
    for (const path of new Set([stdout, stderr])) closeSync(openLog(path, name));
    this.db.transaction(() => {
      if (this.db.get(name)) throw new LivemodError('service', ErrorCodes.SERVICE_EXISTS, `a service named ${name} exists already; remove it first (\`livemod service remove ${name}\`) or choose another name`, { name });
      this.db.insert(
        {
          name,
          command: [...spec.command],
          cwd,
          env: { ...spec.env },
          stdout,
          stderr,
          restart: spec.restart ?? 'always',
          killTimeoutMs: spec.killTimeoutMs ?? 5000,
          maxLogBytes: spec.maxLogBytes ?? 10 * 1024 * 1024,
          runUrl: spec.runUrl ?? null,
          baseEnv: spec.baseEnv ?? baseEnvironment(),
        },
        'stopped',
      );
    });
    return options.start === false ? this.view(this.record(name)) : this.start(name);
  }

  async start(name: string): Promise<ServiceView> {
    const record = this.record(name);
    if (record.desired === 'running' && this.view(record).state === 'running') {
      // Running, but perhaps unsupervised (this call's reconcile skipped it): it gets its supervisor.
      this.ensureSupervisor(name, false);
      return this.view(this.record(name));
    }
    this.ensureSupervisor(name, true, { desired: 'running', status: 'starting', ...(record.status === 'errored' || record.status === 'exited' ? { restarts: 0 } : {}) });
    const deadline = Date.now() + START_WAIT_MS;
    for (;;) {
      const view = this.view(this.record(name));
      // `stopped`: a stop that came in meanwhile.
      if (view.state === 'running' || view.state === 'errored' || view.state === 'exited' || view.state === 'backoff' || view.state === 'stopped') return view;
      if (Date.now() > deadline) throw new LivemodError('service', ErrorCodes.SERVICE_START, `service ${name} did not start within ${START_WAIT_MS} ms; see ${join(this.home.logs, `${name}.supervisor.log`)}`, { name });
      await sleep(20);
    }
  }

  async stop(name: string): Promise<ServiceView> {
    // The pid is read in the transaction that records the stop: a supervisor starting a child
    // after it sees the stop when it records that child, and ends the child itself.
    const record = this.db.transaction(() => {
      this.record(name);
      this.db.update(name, { desired: 'stopped' });
      return this.record(name);
    });
    const serviceOf = (now: ServiceRecord): { pid: number | null; start: number | null; boot: string | null } => ({ pid: now.pid, start: now.pidStart, boot: now.boot });
    const supervisor = { pid: record.supervisorPid, start: record.supervisorStart, boot: record.boot };
    const started = Date.now();
    if (isRunning(serviceOf(record))) signalGroup(record.pid!, 'SIGTERM');
    // The supervisor ends too, after its child (SIGKILL past the kill timeout, from it or from here).
    const bound = record.killTimeoutMs + SUPERVISOR_EXIT_WAIT_MS;
    const done = (): boolean => !isRunning(supervisor) && !isRunning(serviceOf(this.record(name)));
    let killed = false;
    const finished = await waitFor(() => {
      if (!killed && Date.now() - started > record.killTimeoutMs) {
        killed = true;
        const now = this.record(name);
        if (isRunning(serviceOf(now))) signalGroup(now.pid!, 'SIGKILL');
      }
      return done();
    }, bound);
    if (!finished && record.supervisorPid !== null && isRunning(supervisor)) process.kill(record.supervisorPid, 'SIGKILL');
    const last = this.record(name);
    if (isRunning(serviceOf(last))) {
      signalGroup(last.pid!, 'SIGKILL');
      if (!(await waitFor(() => !isRunning(serviceOf(last)), 5000))) {
        throw new LivemodError('service', ErrorCodes.SERVICE_START, `service ${name} (pid ${last.pid}) did not exit after SIGKILL`, { name, pid: last.pid });
      }
    }
    this.db.transaction(() => {
      const now = this.db.get(name);
      // A start that came in meanwhile owns the record now.
      if (!now || now.desired !== 'stopped') return;
      const fields: Record<string, null | string> = {};
      if (now.status !== 'stopped' && now.status !== 'exited' && now.status !== 'errored') fields.status = 'stopped';
      if (!isRunning(serviceOf(now))) Object.assign(fields, { pid: null, pid_start: null });
      if (!isRunning({ pid: now.supervisorPid, start: now.supervisorStart, boot: now.boot })) Object.assign(fields, { supervisor_pid: null, supervisor_start: null });
      if (Object.keys(fields).length > 0) this.db.update(name, fields);
      // A first run's journal says nothing of a later start (which makes its own, in a transaction of its own).
      if (!isRunning(serviceOf(now))) dropExitFile(this.home, name);
    });
    return this.view(this.record(name));
  }

  async restart(name: string): Promise<ServiceView> {
    await this.stop(name);
    return this.start(name);
  }

  /** A live service swaps in place (same pid); any other is restarted. */
  async reload(name: string): Promise<{ view: ServiceView; inPlace: boolean; version?: number }> {
    const record = this.record(name);
    const view = this.view(record);
    if (record.runUrl === null || view.state !== 'running') return { view: await this.restart(name), inPlace: false };
    const answer = await askControl(controlSocket(this.home, name), 'reload', 120_000);
    if (answer.ok !== true) {
      const error = answer.error as { code?: string; message?: string } | undefined;
      throw new LivemodError('service', ErrorCodes.SERVICE_RELOAD, `service ${name} did not reload: ${error?.message ?? 'no reason given'}`, { name, serverCode: error?.code });
    }
    return { view: this.view(this.record(name)), inPlace: true, version: answer.version as number };
  }

  async remove(name: string): Promise<void> {
    const record = this.record(name);
    if (record.desired === 'running' || isRunning({ pid: record.pid, start: record.pidStart, boot: record.boot })) await this.stop(name);
    this.db.transaction(() => this.db.remove(name));
    rmSync(controlSocket(this.home, name), { force: true });
    dropExitFile(this.home, name);
  }

  list(): ServiceView[] {
    return this.db.list().map((record) => this.view(record));
  }

  async status(name: string): Promise<ServiceView> {
    const view = this.view(this.record(name));
    if (view.runUrl !== null && view.state === 'running') {
      try {
        const answer = await askControl(controlSocket(this.home, name), 'status', 2000);
        view.live = { version: answer.version as number, lastSwap: answer.lastSwap ?? null };
      } catch (error) {
        view.live = { error: (error as Error).message };
      }
    }
    return view;
  }

  view(record: ServiceRecord): ServiceView {
    const running = isRunning({ pid: record.pid, start: record.pidStart, boot: record.boot });
    const supervisorRunning = isRunning({ pid: record.supervisorPid, start: record.supervisorStart, boot: record.boot });
    let state: ServiceState;
    if (running) state = 'running';
    else if (record.status === 'errored' || record.status === 'exited') state = record.status;
    else if (record.desired === 'stopped') state = 'stopped';
    else if (!supervisorRunning) state = 'dead';
    else state = record.status === 'backoff' ? 'backoff' : 'starting';
    return {
      name: record.name,
      state,
      pid: running ? record.pid : null,
      uptimeMs: running && record.startedAt !== null ? Date.now() - record.startedAt : null,
      restarts: record.restarts,
      lastExit: record.lastExit,
      supervisor: { pid: supervisorRunning ? record.supervisorPid : null, running: supervisorRunning },
      command: record.command,
      cwd: record.cwd,
      stdout: record.stdout,
      stderr: record.stderr,
      restart: record.restart,
      runUrl: record.runUrl,
    };
  }
}

/** The environment a service is added with: this process's, without what belongs to another service or to this call. */
function baseEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined) env[name] = value;
  delete env.LIVEMOD_CONTROL_SOCKET;
  return env;
}

async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

function checkExecutable(command: string, cwd: string, path: string): void {
  const candidates = command.includes('/') ? [isAbsolute(command) ? command : resolve(cwd, command)] : path.split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return;
    } catch {
      // Not this one.
    }
  }
  throw new LivemodError('service', ErrorCodes.USAGE, `command ${JSON.stringify(command)} ${command.includes('/') ? 'is not an executable file' : 'is not found on PATH'}; give its full path, or fix PATH`, { command });
}
