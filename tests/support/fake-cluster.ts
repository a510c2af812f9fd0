// A cluster port for unit tests: a real ClusterStore, no network, writes durable at once.
import type { ClusterStore } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

export function fakeClusterPort(store: ClusterStore, overrides: Partial<ClusterPort> = {}): ClusterPort {
  return {
    nodeId: store.nodeId,
    store,
    isReady: () => true,
    status: () => ({}),
    request: async () => undefined,
    handle: () => undefined,
    durable: async () => undefined,
    ...overrides,
  };
}
