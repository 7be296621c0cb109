/**
 * The harness every cluster controller runs in (sample-controller's Controller, without the
 * boilerplate each controller would otherwise repeat). It turns informer events into keys on a
 * WorkQueue (common/workqueue.ts) and calls `reconcile(key)` for them:
 *   - the primary kind's events enqueue the object's own `namespace/name`;
 *   - events on objects it owns enqueue their controlling owner's key, when that owner reference
 *     names the primary kind and the owner in the cache has that uid (sample-controller's
 *     handleObject: an orphan, or a child of a deleted namesake, wakes nobody);
 *   - `watches` map any other informer's objects to keys.
 * The queue dedupes (many events, one reconcile), never runs one key twice at once, retries a
 * reconcile that threw after a per-key doubling delay, and honours `{ requeueAfter }`; all delays
 * on the injected Clock. Keys only; reconcile reads the current state from the listers, so a
 * dropped or doubled event cannot leave anything wrong (level-triggered).
 *
 * Workers start only once every informer has synced: a reconcile that ran against a half-filled
 * cache would see children missing and make them again. Informers may be shared between
 * controllers, so start() starts them if nobody has and shutdown() leaves them running.
 */
import type { BackoffOptions } from '../../common/backoff.ts';
import { realClock, type Clock } from '../../common/clock.ts';
import { WorkQueue } from '../../common/workqueue.ts';
import type { Informer } from './informer.ts';
import { controllerOf, groupOf, keyOf, type Frozen, type KObject } from './types.ts';

export type ReconcileResult = void | { requeueAfter?: number };

export interface WatchSource {
  informer: Informer<KObject>;
  /** The keys (of the primary kind) an event on obj should wake. */
  map: (obj: Frozen<KObject>) => readonly string[];
}

export interface ControllerOptions<P extends KObject> {
  /** For errors and logs: "replicaset". */
  name: string;
  /** The kind reconciled: its objects' keys are what reconcile is given. */
  primary: Informer<P>;
  /** That kind's name and apiVersion, to recognise owner references to it (the group must match; any version). */
  kind: string;
  apiVersion: string;
  /** Informers of the objects the primary kind controls (ReplicaSet → Pods). */
  owns?: Informer<KObject>[];
  watches?: WatchSource[];
  reconcile: (key: string) => Promise<ReconcileResult> | ReconcileResult;
  /** Different keys reconciled at once; default 1. */
  workers?: number;
  clock?: Clock;
  /** Delays after a failed reconcile; default the queue's (5 ms doubling to 1000 s). */
  retry?: BackoffOptions;
  /** Told of each failed reconcile (the key is retried regardless). */
  onError?: (key: string, err: unknown) => void;
}

export class Controller<P extends KObject = KObject> {
  readonly name: string;
  private readonly opts: ControllerOptions<P>;
  private readonly group: string;
  private readonly clock: Clock;
  private queue?: WorkQueue;
  private removers: (() => void)[] = [];
  private started = false;
  private closed = false;

  constructor(opts: ControllerOptions<P>) {
    this.name = opts.name;
    this.opts = opts;
    this.group = groupOf(opts.apiVersion);
    this.clock = opts.clock ?? realClock;
  }

  /**
   * Start the informers (if not yet), wait for all to sync, then start the workers; every cached
   * object is enqueued once then. Resolves true once running, false if shut down (or an informer
   * stopped) before the sync.
   */
  async start(): Promise<boolean> {
    if (this.started) throw new Error(`controller ${this.name}: already started`);
    this.started = true;
    const { primary, owns = [], watches = [] } = this.opts;
    const all = [primary, ...owns, ...watches.map((w) => w.informer)];
    for (const inf of all) inf.start();
    const synced = await Promise.all(all.map((inf) => inf.waitForSync()));
    if (this.closed || synced.includes(false)) return false;

    this.queue = new WorkQueue({
      handler: (key) => this.opts.reconcile(key),
      workers: this.opts.workers ?? 1,
      clock: this.clock,
      retry: this.opts.retry,
      onError: this.opts.onError,
    });
    // Registered after the sync: each replays its cache as adds (informer.addEventHandler), and
    // JavaScript runs no event in between, so nothing falls into a gap.
    this.removers.push(primary.addEventHandler({
      onAdd: (o) => this.enqueue(keyOf(o)),
      onUpdate: (_old, o) => this.enqueue(keyOf(o)),
      onDelete: (o) => this.enqueue(keyOf(o)),
    }));
    for (const inf of owns) {
      this.removers.push(inf.addEventHandler({
        onAdd: (o: Frozen<KObject>) => this.enqueueOwner(o),
        onUpdate: (old: Frozen<KObject>, o: Frozen<KObject>) => {
          // A resync of a child: its owner is being resynced itself.
          if (old.metadata.resourceVersion === o.metadata.resourceVersion) return;
          // Both owners, when the controller reference changed (adopted, released).
          this.enqueueOwner(old);
          this.enqueueOwner(o);
        },
        onDelete: (o: Frozen<KObject>) => this.enqueueOwner(o),
      }));
    }
    for (const w of watches) {
      const wake = (o: Frozen<KObject>) => { for (const k of w.map(o)) this.enqueue(k); };
      this.removers.push(w.informer.addEventHandler({ onAdd: wake, onUpdate: (_old: Frozen<KObject>, o: Frozen<KObject>) => wake(o), onDelete: wake }));
    }
    return true;
  }

  /** Reconcile key soon (deduped with what is queued). */
  enqueue(key: string): void {
    this.queue?.add(key);
  }

  /** Reconcile key after ms. */
  enqueueAfter(key: string, ms: number): void {
    this.queue?.addAfter(key, ms);
  }

  /** Keys waiting, being reconciled, or delayed. */
  get pending(): number {
    return this.queue?.length ?? 0;
  }

  /** Resolves when nothing is queued or running (delayed keys do not count). */
  idle(): Promise<void> {
    return this.queue?.idle() ?? Promise.resolve();
  }

  /** Stop taking events and keys; resolves after the reconciles running now have finished. */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const remove of this.removers.splice(0)) remove();
    await this.queue?.shutdown();
  }

  /** sample-controller's handleObject: the controlling owner's key, if it is ours and still there. */
  private enqueueOwner(obj: Frozen<KObject>): void {
    const ref = controllerOf(obj);
    if (!ref || ref.kind !== this.opts.kind || groupOf(ref.apiVersion) !== this.group) return;
    const ns = obj.metadata.namespace ?? '';
    // Owner references never cross namespaces; a namespaced child may have a cluster-scoped owner.
    const key = [ns ? `${ns}/${ref.name}` : '', ref.name].find((k) => k && this.opts.primary.get(k));
    if (!key) return;
    const owner = this.opts.primary.get(key)!;
    if (owner.metadata.uid !== undefined && owner.metadata.uid !== ref.uid) return;
    this.enqueue(key);
  }
}
