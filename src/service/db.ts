// The service manager's state: one SQLite database (node:sqlite), in WAL mode so CLI calls and
// supervisors read while one writes, with a busy timeout so concurrent writers wait their turn
// instead of failing. The schema is versioned (PRAGMA user_version) and migrated forward on open,
// each step in its own transaction: a database from an older livemod is brought up to date; one
// from a newer livemod is refused, never touched.
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { chmodSync, mkdirSync } from 'node:fs';
import { ErrorCodes, LivemodError } from '../errors.ts';
import type { ServiceHome } from './home.ts';

export type RestartPolicy = 'always' | 'on-failure' | 'never';
export type Desired = 'running' | 'stopped';
/** What the supervisor last recorded. */
export type RecordedStatus = 'starting' | 'running' | 'backoff' | 'stopped' | 'exited' | 'errored';

export interface ServiceRecord {
  readonly name: string;
  readonly command: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly stdout: string;
  readonly stderr: string;
  readonly restart: RestartPolicy;
  readonly createdAt: number;
  /** Grace between SIGTERM and SIGKILL on stop. */
  readonly killTimeoutMs: number;
  /** A log file past this size is rotated (kept: .1 to .3). */
  readonly maxLogBytes: number;
  /** Set for a `--run URL` service: a livemod program that takes reloads in place. */
  readonly runUrl: string | null;
  /** The environment of the `add` call, which the service runs with (plus `env`); null for services added before schema 3. */
  readonly baseEnv: Readonly<Record<string, string>> | null;
  readonly desired: Desired;
  readonly status: RecordedStatus;
  readonly pid: number | null;
  readonly pidStart: number | null;
  readonly supervisorPid: number | null;
  readonly supervisorStart: number | null;
  readonly boot: string | null;
  readonly restarts: number;
  readonly lastExit: string | null;
  readonly startedAt: number | null;
  readonly updatedAt: number;
}

/** Each step brings the schema from version i to i + 1. Never edit a step: add one. */
const MIGRATIONS: readonly string[] = [
  // 1: services and what their supervisor last recorded.
  `CREATE TABLE services (
     name TEXT PRIMARY KEY,
     command TEXT NOT NULL,
     cwd TEXT NOT NULL,
     env TEXT NOT NULL,
     stdout_path TEXT NOT NULL,
     stderr_path TEXT NOT NULL,
     restart TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE state (
     name TEXT PRIMARY KEY REFERENCES services(name) ON DELETE CASCADE,
     desired TEXT NOT NULL,
     status TEXT NOT NULL,
     pid INTEGER,
     pid_start INTEGER,
     supervisor_pid INTEGER,
     supervisor_start INTEGER,
     boot TEXT,
     restarts INTEGER NOT NULL DEFAULT 0,
     last_exit TEXT,
     started_at INTEGER,
     updated_at INTEGER NOT NULL
   );`,
  // 2: the stop grace period, log rotation and live (`--run URL`) services.
  `ALTER TABLE services ADD COLUMN kill_timeout_ms INTEGER NOT NULL DEFAULT 5000;
   ALTER TABLE services ADD COLUMN max_log_bytes INTEGER NOT NULL DEFAULT 10485760;
   ALTER TABLE services ADD COLUMN run_url TEXT;`,
  // 3: the environment the service was added with (before: whichever CLI call started its supervisor).
  `ALTER TABLE services ADD COLUMN base_env TEXT;`,
];

export const SCHEMA_VERSION: number = MIGRATIONS.length;

function stateError(home: ServiceHome, what: string, fix: string, cause?: unknown): LivemodError {
  return new LivemodError('service', ErrorCodes.SERVICE_STATE, `the service database ${home.database} ${what}; ${fix}`, { database: home.database }, cause === undefined ? undefined : { cause });
}

export class ServiceDb {
  readonly home: ServiceHome;
  private readonly db: DatabaseSync;

  private constructor(home: ServiceHome, db: DatabaseSync) {
    this.home = home;
    this.db = db;
  }

  /** Opens (creating it if need be) and migrates the database; `migrations` lets a test stop at an older schema. */
  static open(home: ServiceHome, options: { migrations?: number } = {}): ServiceDb {
    try {
      mkdirSync(home.dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw stateError(home, `cannot be created (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'set LIVEMOD_HOME to a writable folder', error);
    }
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite');
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(home.database, { timeout: 10_000 });
      db.exec('PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;');
    } catch (error) {
      throw stateError(home, `cannot be opened (${firstLine(error)})`, 'if the file is damaged, move it away (the services must then be added again)', error);
    }
    const opened = new ServiceDb(home, db);
    try {
      opened.migrate(options.migrations ?? MIGRATIONS.length);
      // It holds each service's environment (tokens included): its owner's only.
      chmodSync(home.database, 0o600);
    } catch (error) {
      db.close();
      throw error;
    }
    return opened;
  }

  private migrate(target: number): void {
    let version: number;
    try {
      version = Number((this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
    } catch (error) {
      throw stateError(this.home, `is not a database livemod can read (${firstLine(error)})`, 'move the file away; the services must then be added again', error);
    }
    if (version > MIGRATIONS.length) {
      throw stateError(this.home, `has schema version ${version}, newer than this livemod knows (${MIGRATIONS.length})`, 'run the newer livemod that wrote it; this one leaves the file untouched');
    }
    for (let next = version; next < target; next += 1) {
      this.transaction(() => {
        // Another process may have migrated between our read and this transaction's lock.
        const now = Number((this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
        if (now > next) return;
        this.db.exec(MIGRATIONS[next]!);
        this.db.exec(`PRAGMA user_version = ${next + 1}`);
      });
    }
  }

  /** Runs `body` in one write transaction (BEGIN IMMEDIATE: concurrent writers wait, never interleave). */
  transaction<T>(body: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = body();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  schemaVersion(): number {
    return Number((this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  }

  close(): void {
    this.db.close();
  }

  get(name: string): ServiceRecord | null {
    const row = this.db.prepare('SELECT * FROM services JOIN state USING (name) WHERE name = ?').get(name);
    return row ? toRecord(row as unknown as Row) : null;
  }

  list(): ServiceRecord[] {
    return (this.db.prepare('SELECT * FROM services JOIN state USING (name) ORDER BY name').all() as unknown as Row[]).map(toRecord);
  }

  insert(service: Pick<ServiceRecord, 'name' | 'command' | 'cwd' | 'env' | 'stdout' | 'stderr' | 'restart' | 'killTimeoutMs' | 'maxLogBytes' | 'runUrl' | 'baseEnv'>, desired: Desired): void {
    const now = Date.now();
    this.db
      .prepare('INSERT INTO services (name, command, cwd, env, stdout_path, stderr_path, restart, created_at, kill_timeout_ms, max_log_bytes, run_url, base_env) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(service.name, JSON.stringify(service.command), service.cwd, JSON.stringify(service.env), service.stdout, service.stderr, service.restart, now, service.killTimeoutMs, service.maxLogBytes, service.runUrl, service.baseEnv === null ? null : JSON.stringify(service.baseEnv));
    this.db.prepare("INSERT INTO state (name, desired, status, updated_at) VALUES (?, ?, 'stopped', ?)").run(service.name, desired, now);
  }

  remove(name: string): void {
    this.db.prepare('DELETE FROM services WHERE name = ?').run(name);
  }

  /** Sets state columns of one service (column names as in the table). */
  update(name: string, fields: Readonly<Record<string, SQLInputValue>>): void {
    const columns = Object.keys(fields);
    for (const column of columns) if (!STATE_COLUMNS.has(column)) throw new Error(`not a state column: ${column}`);
    const assignments = [...columns.map((column) => `${column} = ?`), 'updated_at = ?'].join(', ');
    this.db.prepare(`UPDATE state SET ${assignments} WHERE name = ?`).run(...columns.map((column) => fields[column]!), Date.now(), name);
  }
}

const STATE_COLUMNS = new Set(['desired', 'status', 'pid', 'pid_start', 'supervisor_pid', 'supervisor_start', 'boot', 'restarts', 'last_exit', 'started_at']);

interface Row {
  name: string;
  command: string;
  cwd: string;
  env: string;
  stdout_path: string;
  stderr_path: string;
  restart: string;
  created_at: number;
  kill_timeout_ms: number;
  max_log_bytes: number;
  run_url: string | null;
  base_env: string | null;
  desired: string;
  status: string;
  pid: number | null;
  pid_start: number | null;
  supervisor_pid: number | null;
  supervisor_start: number | null;
  boot: string | null;
  restarts: number;
  last_exit: string | null;
  started_at: number | null;
  updated_at: number;
}

function toRecord(row: Row): ServiceRecord {
  return {
    name: row.name,
    command: JSON.parse(row.command) as string[],
    cwd: row.cwd,
    env: JSON.parse(row.env) as Record<string, string>,
    stdout: row.stdout_path,
    stderr: row.stderr_path,
    restart: row.restart as RestartPolicy,
    createdAt: Number(row.created_at),
    killTimeoutMs: Number(row.kill_timeout_ms),
    maxLogBytes: Number(row.max_log_bytes),
    runUrl: row.run_url,
    baseEnv: row.base_env === null ? null : (JSON.parse(row.base_env) as Record<string, string>),
    desired: row.desired as Desired,
    status: row.status as RecordedStatus,
    pid: row.pid === null ? null : Number(row.pid),
    pidStart: row.pid_start === null ? null : Number(row.pid_start),
    supervisorPid: row.supervisor_pid === null ? null : Number(row.supervisor_pid),
    supervisorStart: row.supervisor_start === null ? null : Number(row.supervisor_start),
    boot: row.boot,
    restarts: Number(row.restarts),
    lastExit: row.last_exit,
    startedAt: row.started_at === null ? null : Number(row.started_at),
    updatedAt: Number(row.updated_at),
  };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 160);
}
