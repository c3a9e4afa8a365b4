// A server's membership in a fleet: an origin announces each version it publishes, a replica
// listens for announcements of its app and looks at its source when one says something newer is
// out. Both answer fleet questions, and both catch up after a broker outage: the origin says its
// current version again, the replica looks at its source (it may have missed announcements).
import { hostname } from 'node:os';
import type { ClusterStatus } from '../protocol/index.ts';
import type { Snapshot } from '../snapshot/index.ts';
import { inert } from '../text.ts';
import { SUBJECTS, type Broker } from './broker.ts';
import type { Follower } from './follower.ts';
import { ANNOUNCE_TYPE, FLEET_ANSWER_TYPE, parseAnnouncement, parseFleetQuestion, type Announcement, type FleetMember } from './messages.ts';

/** What a member needs of its server. */
export interface MemberServer {
  readonly current: Snapshot | undefined;
  readonly url: string;
  status(): { clientCount: number; replicaCount: number };
  describeCluster(provider: () => ClusterStatus): void;
}

export interface MemberOptions {
  /** null: a replica following its source without a broker (origin channel and poll only). */
  readonly broker: Broker | null;
  readonly app: string;
  readonly server: MemberServer;
  /** Present on a replica. */
  readonly follower?: Follower;
  readonly log: (line: string) => void;
}

/** Says on the broker that `snapshot` is out: a hint, on which replicas look at their source. */
export function announceVersion(broker: Broker, snapshot: Snapshot): boolean {
  const { manifest, sealed } = snapshot;
  const announcement: Announcement = { type: ANNOUNCE_TYPE, app: manifest.name, version: manifest.version, manifestHash: sealed.hash };
  return broker.publish(SUBJECTS.version(manifest.name), announcement);
}

/** Looks a broker's reconnections may cause, at most one per this many ms. */
const RECONNECT_LOOK_MS = 5000;

/** Dropped broker messages are logged at most this often, so a flood does not flood the log. */
const DROP_LOG_INTERVAL_MS = 10_000;

export class FleetMembership {
  private readonly options: MemberOptions;
  private readonly startedAt = Date.now();
  private lastDropLog = 0;
  private dropped = 0;
  private lastReconnectLook = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(options: MemberOptions) {
    this.options = options;
    const { broker, follower, server, app } = options;
    server.describeCluster(() => this.status());
    if (!broker) return;
    broker.subscribe(SUBJECTS.fleet, (message, reply) => {
      const question = parseFleetQuestion(message);
      if (!question || !reply || (question.app !== undefined && question.app !== app)) return;
      reply(this.member());
    }, (why) => this.drop(why));
    if (follower) {
      broker.subscribe(SUBJECTS.version(app), (message) => {
        const announcement = parseAnnouncement(message);
        if (typeof announcement === 'string') return this.drop(`an announcement on ${SUBJECTS.version(app)} ignored: ${announcement}`);
        if (announcement.app !== app) return this.drop(`an announcement for app ${inert(announcement.app, 80)} on app ${inert(app, 80)}'s subject ignored`);
        follower.hint(announcement.version, `announced version ${announcement.version}`);
      }, (why) => this.drop(why));
    }
    broker.on((event) => {
      if (event === 'closed') {
        options.log(`[livemod cluster] the connection to the broker at ${broker.address.display} is closed for good (${inert(broker.closedWith ?? 'closed', 160)}); serving on without it${follower ? ' (the source is still polled and its channel followed)' : ', announcing nothing'}: restart to join again`);
        return;
      }
      if (event === 'disconnected') options.log(`[livemod cluster] lost the broker at ${broker.address.display}; serving on, reconnecting`);
      if (event !== 'reconnected') return;
      options.log(`[livemod cluster] broker ${broker.address.display} is back`);
      if (follower) this.wakeAfterReconnect(follower);
      else if (server.current) this.announce(server.current);
    });
  }

  /** The origin's word that `snapshot` is out (a hint: replicas fetch and verify it from their source). */
  announce(snapshot: Snapshot): void {
    if (this.options.broker && !announceVersion(this.options.broker, snapshot)) {
      this.options.log(`[livemod cluster] version ${snapshot.manifest.version} could not be announced: the broker connection is closed; replicas find it at their next look`);
    }
  }

  member(): FleetMember {
    const served = this.options.server.status();
    return {
      type: FLEET_ANSWER_TYPE,
      app: this.options.app,
      role: this.options.follower ? 'replica' : 'origin',
      url: this.options.server.url,
      version: this.options.server.current?.manifest.version ?? null,
      clients: served.clientCount - served.replicaCount,
      rssBytes: process.memoryUsage.rss(),
      uptimeMs: Date.now() - this.startedAt,
      pid: process.pid,
      host: hostname().slice(0, 256) || 'unknown',
    };
  }

  status(): ClusterStatus {
    const { broker, follower } = this.options;
    const followed = follower?.status();
    return {
      role: follower ? 'replica' : 'origin',
      broker: broker?.address.display ?? null,
      brokerConnected: broker?.connected ?? false,
      ...(followed ? { source: followed.source, lastLookAt: followed.lastLookAt, lastChangeAt: followed.lastChangeAt, lastError: followed.lastError } : {}),
    };
  }

  /**
   * A reconnection means announcements may have been missed: look at the source, but at most once
   * per RECONNECT_LOOK_MS, so a broker made to drop and take this server back again and again
   * (a flood of oversized messages does that to a Redis subscriber) cannot drive looks.
   */
  private wakeAfterReconnect(follower: Follower): void {
    const wait = this.lastReconnectLook + RECONNECT_LOOK_MS - Date.now();
    if (wait <= 0) {
      this.lastReconnectLook = Date.now();
      follower.wake('broker reconnected');
      return;
    }
    if (this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.lastReconnectLook = Date.now();
      follower.wake('broker reconnected');
    }, wait);
    this.reconnectTimer.unref();
  }

  private drop(why: string): void {
    this.dropped += 1;
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_INTERVAL_MS) return;
    this.lastDropLog = now;
    this.options.log(`[livemod cluster] ${why}${this.dropped > 1 ? ` (${this.dropped} dropped so far)` : ''}`);
  }
}
