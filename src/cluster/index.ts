// Scale-out's only door: servers of one fleet over a message broker (NATS), replicas that follow
// a source (the origin, or a snapshot in object storage), and the fleet view.
export { connectBroker, parseBrokerUrl, appToken, SUBJECTS, type Broker, type BrokerAddress } from './broker.ts';
export { parseRedisUrl } from './redis.ts';
export { Follower, type FollowerOptions, type FollowerStatus, type Publisher } from './follower.ts';
export { FleetMembership, announceVersion, type MemberOptions, type MemberServer } from './member.ts';
export { FLEET_QUESTION_TYPE, parseAnnouncement, parseFleetMember, type Announcement, type FleetMember } from './messages.ts';
export { gatherFleet, type FleetView } from './fleet.ts';
