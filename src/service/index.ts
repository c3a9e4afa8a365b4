// The service manager: named programs kept running by a supervisor each, state in SQLite.
export { ServiceManager, type AddSpec, type ServiceState, type ServiceView } from './manager.ts';
export { serviceHome, checkName, type ServiceHome } from './home.ts';
export { ServiceDb, SCHEMA_VERSION, type RestartPolicy, type ServiceRecord } from './db.ts';
export { supervise, MIN_UPTIME_MS, MAX_FAST_CRASHES, backoffMs } from './supervisor.ts';
export { CONTROL_ENV, listenControl, askControl } from './control.ts';
export { lastLines, follow, rotateIfLarge } from './logs.ts';
export { identify, isRunning, processGroup } from './proc.ts';
