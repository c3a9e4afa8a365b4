// The fleet view: one question on the broker, every server answers with what it serves and to
// how many clients, and the answers are summed per app. Answers are claims of servers, not
// verified facts: this is an operator's view, never an input to what anything serves.
import type { Broker } from './broker.ts';
import { SUBJECTS } from './broker.ts';
import { FLEET_QUESTION_TYPE, parseFleetMember, type FleetMember, type FleetQuestion } from './messages.ts';

export interface FleetApp {
  readonly app: string;
  /** Channel clients over all its servers. */
  readonly clients: number;
  /** version → how many servers serve it (a fleet mid-rollout shows two). */
  readonly versions: Readonly<Record<string, number>>;
  readonly servers: readonly FleetMember[];
}

export interface FleetView {
  readonly broker: string;
  readonly apps: readonly FleetApp[];
  readonly servers: number;
  readonly clients: number;
  /** Answers that were not a server's (dropped). */
  readonly ignored: number;
}

export async function gatherFleet(broker: Broker, options: { readonly app?: string; readonly waitMs: number }): Promise<FleetView> {
  const question: FleetQuestion = options.app === undefined ? { type: FLEET_QUESTION_TYPE } : { type: FLEET_QUESTION_TYPE, app: options.app };
  const answers = await broker.gather(SUBJECTS.fleet, question, options.waitMs);
  const byApp = new Map<string, FleetMember[]>();
  let ignored = 0;
  for (const answer of answers) {
    const member = parseFleetMember(answer);
    if (!member) {
      ignored += 1;
      continue;
    }
    const list = byApp.get(member.app) ?? [];
    list.push(member);
    byApp.set(member.app, list);
  }
  const apps: FleetApp[] = [...byApp.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([app, servers]) => {
    const versions: Record<string, number> = {};
    for (const server of servers) {
      const key = String(server.version ?? 'none');
      versions[key] = (versions[key] ?? 0) + 1;
    }
    servers.sort((a, b) => (a.role === b.role ? (a.url < b.url ? -1 : 1) : a.role === 'origin' ? -1 : 1));
    return { app, clients: servers.reduce((sum, server) => sum + server.clients, 0), versions, servers };
  });
  return {
    broker: broker.address.display,
    apps,
    servers: apps.reduce((sum, app) => sum + app.servers.length, 0),
    clients: apps.reduce((sum, app) => sum + app.clients, 0),
    ignored,
  };
}
