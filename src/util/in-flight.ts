/**
 * Work under way that a `close()` waits for: `track(p)` returns `p` itself, and `drained()` resolves once
 * every tracked promise has settled, also those tracked while it waits.
 * @internal
 */
export class InFlight {
  readonly #pending = new Set<Promise<void>>();

  track<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => {},
      () => {},
    );
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
    return work;
  }

  async drained(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }
}
