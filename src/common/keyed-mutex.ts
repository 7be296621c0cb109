/**
 * One lock per key (a container id, an upload session, a network attachment): callers with the
 * same key run one after another in arrival order, different keys run concurrently. A failure of
 * one holder never blocks the next. Keys without waiters are forgotten, so the map stays as small
 * as the work in flight. (containerd's kmutex plays this part.)
 *
 * Not re-entrant: a holder that calls run() with its own key again waits for itself forever. Code
 * that needs to know it already holds the lock asks held().
 */
export class KeyedMutex {
  private tails = new Map<string, Promise<void>>();
  private holders = new Map<string, number>();

  run<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(async () => {
      this.holders.set(key, (this.holders.get(key) ?? 0) + 1);
      try {
        return await fn();
      } finally {
        const n = (this.holders.get(key) ?? 1) - 1;
        if (n) this.holders.set(key, n); else this.holders.delete(key);
      }
    });
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return result;
  }

  /** Is fn of some run(key) executing right now? */
  held(key: string): boolean {
    return this.holders.has(key);
  }

  /** Keys locked or waited for (for leak checks in tests). */
  get size(): number {
    return this.tails.size;
  }
}
