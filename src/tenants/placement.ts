import { TenantDbError } from '../errors.js';

/** A tenant server as a placement policy sees it. */
export interface ServerLoad {
  /** Its key in `tenantServers`. */
  name: string;
  /** Its `weight` (default 1; 0: no new tenant unless named). */
  weight: number;
  /** Tenants registered on it (being dropped ones aside), plus those this process is creating on it now. */
  tenants: number;
  /** False when it could not be reached moments ago (a connect failed or timed out). */
  reachable: boolean;
}

/** What a placement policy is told about the tenant being created. */
export interface PlacementInput {
  /** The new tenant's name. */
  name: string;
  /** The creating user's id, when given. */
  createdBy: string | null;
  /** Every configured tenant server, in the order of `tenantServers` (the implicit `default` last when added). */
  servers: ServerLoad[];
}

/**
 * Chooses the server of a new tenant that `tenants.create` names none for: returns a key of `tenantServers`
 * (an unknown one is VALIDATION).
 */
export type PlacementPolicy = (input: PlacementInput) => string | Promise<string>;

/**
 * The default placement, as an order of preference: reachable servers before unreachable ones, then the
 * lowest tenants ÷ weight, then the order of `tenantServers`. Servers of weight 0 are left out.
 * @internal
 */
export function placementOrder(servers: readonly ServerLoad[]): string[] {
  return servers
    .map((server, index) => ({ server, index, load: server.tenants / server.weight }))
    .filter(({ server }) => server.weight > 0)
    .sort((a, b) => Number(b.server.reachable) - Number(a.server.reachable) || a.load - b.load || a.index - b.index)
    .map(({ server }) => server.name);
}

/** How long a server that could not be reached is put after the others by the default placement. */
const UNREACHABLE_FOR_MS = 30_000;

/** What {@link Placement} needs to know of the servers and the registry. */
export interface PlacementDeps {
  /** The configured servers and their weights, in order. */
  servers(): Array<{ name: string; weight: number }>;
  /** Tenants per server name in the registry (being dropped ones aside). */
  countTenants(): Promise<Map<string, number>>;
  /** The host's policy; undefined: {@link placementOrder}. */
  policy: PlacementPolicy | undefined;
  /** Current time in ms (tests may pass their own clock). Default: Date.now. */
  now?: () => number;
}

/**
 * Where new tenants go: the host's policy, or the default order (see {@link placementOrder}), over the servers'
 * tenant counts, those this process is creating right now included, so that a burst of creates spreads.
 * @internal
 */
export class Placement {
  readonly #deps: PlacementDeps;
  readonly #now: () => number;
  /** Creates under way in this process, per server. */
  readonly #creating = new Map<string, number>();
  /** Servers that could not be reached, until when. */
  readonly #unreachableUntil = new Map<string, number>();

  constructor(deps: PlacementDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * The servers to try for a new tenant, best first: one, the policy's choice, with a host policy; else the
   * default order. VALIDATION when no server may take it (every weight 0), or when the policy names an unknown
   * server or throws (its error as `cause`).
   */
  async candidates(input: Omit<PlacementInput, 'servers'>): Promise<string[]> {
    const configured = this.#deps.servers();
    const counts = await this.#deps.countTenants();
    const now = this.#now();
    const servers: ServerLoad[] = configured.map(({ name, weight }) => ({
      name,
      weight,
      tenants: (counts.get(name) ?? 0) + (this.#creating.get(name) ?? 0),
      reachable: (this.#unreachableUntil.get(name) ?? 0) <= now,
    }));
    const { policy } = this.#deps;
    if (!policy) {
      const order = placementOrder(servers);
      if (order.length === 0) throw new TenantDbError('VALIDATION', 'no tenant server takes new tenants (every weight is 0): name one with { server }');
      return order;
    }
    let chosen: unknown;
    try {
      chosen = await policy({ ...input, servers });
    } catch (err) {
      throw new TenantDbError('VALIDATION', 'the placement policy failed', { cause: err });
    }
    if (typeof chosen !== 'string' || !configured.some((s) => s.name === chosen)) {
      throw new TenantDbError('VALIDATION', `the placement policy chose an unknown tenant server ${JSON.stringify(chosen)}`);
    }
    return [chosen];
  }

  /** Counts a create under way on `server` until the returned function is called. */
  begin(server: string): () => void {
    this.#creating.set(server, (this.#creating.get(server) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.#creating.get(server) ?? 1) - 1;
      if (left > 0) this.#creating.set(server, left);
      else this.#creating.delete(server);
    };
  }

  /** Notes that `server` could not be reached: the default placement tries the others first for a while. */
  unreachable(server: string): void {
    this.#unreachableUntil.set(server, this.#now() + UNREACHABLE_FOR_MS);
  }

  /** Notes that `server` answered. */
  reachable(server: string): void {
    this.#unreachableUntil.delete(server);
  }
}
