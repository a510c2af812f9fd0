/**
 * Members tell each other whom they know: every node publishes, on the members topic, its own
 * addresses and metadata and the peers it is connected to, so reaching one member is enough to
 * find them all.
 */
import type { GossipSub } from "@chainsafe/libp2p-gossipsub";
import { TopicValidatorResult, type Message } from "@libp2p/interface";
import type { Members } from "./members";
import { countRejection, type Counters } from "./replication";
import type { Logger } from "./types";
import { announcementSchema, decodeJson, encodeJson, MAX_GOSSIP_BYTES, WIRE_VERSION, type Announcement } from "./wire";

export interface AnnouncementDeps {
  pubsub: GossipSub;
  topic: string;
  selfId: string;
  members: Members;
  counters: Counters;
  log: Logger;
  ownAddresses(): string[];
  meta: Record<string, string>;
  connectedPeers(): string[];
}

export function checkAnnouncement(data: Uint8Array, from: string): Announcement | string {
  if (data.byteLength > MAX_GOSSIP_BYTES) return "too-large";
  let json: unknown;
  try {
    json = decodeJson(data);
  } catch {
    return "malformed-json";
  }
  const parsed = announcementSchema.safeParse(json);
  if (!parsed.success) return "malformed";
  if (parsed.data.v !== WIRE_VERSION) return "unknown-version";
  if (parsed.data.peerId !== from) return "foreign-announcement";
  return parsed.data;
}

export class Announcements {
  private readonly checked = new WeakMap<Message, Announcement>();
  private pending: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: AnnouncementDeps) {}

  start(): void {
    const { pubsub, topic } = this.deps;
    pubsub.topicValidators.set(topic, (_peer, message) => this.validate(message));
    pubsub.addEventListener("message", this.onMessage);
    pubsub.subscribe(topic);
  }

  /** Announce soon: several triggers in a short while make one message. */
  announceSoon(delayMs = 200): void {
    if (this.stopped || this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.announce();
    }, delayMs);
  }

  announce(): void {
    if (this.stopped) return;
    const members = this.deps
      .connectedPeers()
      .map((peerId) => ({ peerId, addrs: this.deps.members.addressesOf(peerId).slice(0, 32) }))
      .filter((m) => m.addrs.length > 0)
      .slice(0, 256);
    const announcement: Announcement = {
      v: WIRE_VERSION,
      peerId: this.deps.selfId,
      addrs: this.deps.ownAddresses().slice(0, 32),
      meta: this.deps.meta,
      members,
    };
    this.deps.counters.messagesOut += 1;
    this.deps.pubsub.publish(this.deps.topic, encodeJson(announcement)).catch((error: unknown) => {
      this.deps.log.warn("cluster: announcement failed", { error: (error as Error).message });
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
    const { pubsub, topic } = this.deps;
    pubsub.removeEventListener("message", this.onMessage);
    pubsub.topicValidators.delete(topic);
    try {
      pubsub.unsubscribe(topic);
    } catch (error) {
      this.deps.log.warn("cluster: unsubscribe failed", { topic, error: (error as Error).message });
    }
  }

  private validate(message: Message): TopicValidatorResult {
    if (message.type !== "signed") {
      countRejection(this.deps.counters, "unsigned");
      return TopicValidatorResult.Reject;
    }
    const verdict = checkAnnouncement(message.data, message.from.toString());
    if (typeof verdict === "string") {
      if (countRejection(this.deps.counters, verdict)) {
        this.deps.log.warn("cluster: rejected an announcement", {
          from: message.from.toString(),
          reason: verdict,
          total: this.deps.counters.rejected[verdict],
        });
      }
      return TopicValidatorResult.Reject;
    }
    this.checked.set(message, verdict);
    return TopicValidatorResult.Accept;
  }

  private readonly onMessage = (event: CustomEvent<Message>): void => {
    const message = event.detail;
    if (message.topic !== this.deps.topic) return;
    const announcement = this.checked.get(message);
    if (!announcement) return;
    this.checked.delete(message);
    this.deps.counters.messagesIn += 1;
    this.deps.members.announce(announcement.peerId, announcement.addrs, announcement.meta);
    for (const member of announcement.members) this.deps.members.learn("gossip", member.peerId, member.addrs);
  };
}
