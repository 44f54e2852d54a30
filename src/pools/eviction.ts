/** What the eviction choice sees of one tenant pool. */
export interface EvictionCandidate {
  /** Idle connections it could close now. */
  idle: number;
  /** Its database's estimated recent uses (see FrequencySketch). */
  frequency: number;
  /** When it was last used (ms). */
  lastUsed: number;
}

/**
 * Which idle connections to close to free `need` slots of the connection budget: those of the databases
 * asked for least often lately first, among equals the least recently used; as many from one pool as it
 * has idle. Returns `[candidate, connections to close]` pairs, in order, freeing at most `need`.
 * @internal
 */
export function chooseEvictions<C extends EvictionCandidate>(candidates: readonly C[], need: number): Array<[C, number]> {
  const ordered = candidates.filter((c) => c.idle > 0).sort((a, b) => a.frequency - b.frequency || a.lastUsed - b.lastUsed);
  const chosen: Array<[C, number]> = [];
  for (const candidate of ordered) {
    if (need <= 0) break;
    const take = Math.min(candidate.idle, need);
    chosen.push([candidate, take]);
    need -= take;
  }
  return chosen;
}
