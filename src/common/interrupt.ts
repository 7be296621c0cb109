/**
 * Cleanups for an interrupted command. A long store write (a pull, a build, an import) holds temp
 * files and a lease; Node's default on SIGINT/SIGTERM/SIGHUP is to exit at once, leaving them for the
 * next gc. A command that opts in (`cleanUpOnSignals`) runs the registered cleanups synchronously
 * first, then exits as the signal would (128 + its number). Writers register whatever they hold with
 * `onInterrupt` and remove it once it is committed or gone.
 */
import { constants } from 'node:os';

const pending = new Set<() => void>();

/** Run `fn` if the process is interrupted before the returned function is called. */
export function onInterrupt(fn: () => void): () => void {
  pending.add(fn);
  return () => { pending.delete(fn); };
}

/** Until the returned function is called, a signal runs the cleanups and exits. */
export function cleanUpOnSignals(): () => void {
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => {
    const h = () => {
      for (const fn of pending) {
        try { fn(); } catch { /* best effort: the rest still run */ }
      }
      pending.clear();
      process.exit(128 + constants.signals[sig]);
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => { for (const [sig, h] of handlers) process.off(sig, h); };
}
