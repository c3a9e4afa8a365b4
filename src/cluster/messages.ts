// What livemod servers say to each other over the broker. Every message is a hint or an answer
// for people: nothing in one is code or is trusted. A reader checks shapes strictly and drops
// what does not fit, so a stranger on the broker can at most make a replica ask its own source
// whether something is new.
import { isHash } from '../snapshot/index.ts';

export const ANNOUNCE_TYPE = 'livemod/announce@1';
export const FLEET_QUESTION_TYPE = 'livemod/fleet@1';
export const FLEET_ANSWER_TYPE = 'livemod/fleet-member@1';

/** "Version N of app A is out; its signed manifest hashes to H." */
export interface Announcement {
  readonly type: typeof ANNOUNCE_TYPE;
  readonly app: string;
  readonly version: number;
  readonly manifestHash: string;
}

export interface FleetQuestion {
  readonly type: typeof FLEET_QUESTION_TYPE;
  /** Only servers of this app answer; absent: all. */
  readonly app?: string;
}

/** One server's answer: what it serves and to how many. */
export interface FleetMember {
  readonly type: typeof FLEET_ANSWER_TYPE;
  readonly app: string;
  /** 'origin': builds or publishes and announces; 'replica': follows a source. */
  readonly role: 'origin' | 'replica';
  /** Its own URL as it listens (behind a balancer, not what clients dial). */
  readonly url: string;
  readonly version: number | null;
  /** Channel clients that are programs (replicas following this server are not counted). */
  readonly clients: number;
  readonly rssBytes: number;
  readonly uptimeMs: number;
  readonly pid: number;
  readonly host: string;
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function shortString(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max;
}

function count(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The announcement, or why it is not one. */
export function parseAnnouncement(value: unknown): Announcement | string {
  const fields = record(value);
  if (!fields || fields.type !== ANNOUNCE_TYPE) return 'not an announcement';
  if (!shortString(fields.app, 128)) return 'no app name';
  if (!count(fields.version) || fields.version === 0) return 'no version';
  if (typeof fields.manifestHash !== 'string' || !isHash(fields.manifestHash)) return 'no manifest hash';
  return { type: ANNOUNCE_TYPE, app: fields.app, version: fields.version, manifestHash: fields.manifestHash };
}

export function parseFleetQuestion(value: unknown): FleetQuestion | null {
  const fields = record(value);
  if (!fields || fields.type !== FLEET_QUESTION_TYPE) return null;
  if (fields.app !== undefined && !shortString(fields.app, 128)) return null;
  return fields.app === undefined ? { type: FLEET_QUESTION_TYPE } : { type: FLEET_QUESTION_TYPE, app: fields.app };
}

export function parseFleetMember(value: unknown): FleetMember | null {
  const fields = record(value);
  if (!fields || fields.type !== FLEET_ANSWER_TYPE) return null;
  if (!shortString(fields.app, 128) || (fields.role !== 'origin' && fields.role !== 'replica') || !shortString(fields.url, 2048) || !/^https?:\/\/[\x21-\x7e]+$/.test(fields.url) || !shortString(fields.host, 256)) return null;
  if (!(fields.version === null || count(fields.version)) || !count(fields.clients) || !count(fields.rssBytes) || !count(fields.uptimeMs) || !count(fields.pid)) return null;
  return {
    type: FLEET_ANSWER_TYPE, app: fields.app, role: fields.role, url: fields.url, version: fields.version as number | null,
    clients: fields.clients, rssBytes: fields.rssBytes, uptimeMs: fields.uptimeMs, pid: fields.pid, host: fields.host,
  };
}
