/**
 * The engine's event stream (`GET /v1/events`, `pier events`): what a node agent watches and CRI's
 * GetContainerEvents will serve. Every event has docker's shape (Type, Action, Actor {ID,
 * Attributes}, scope, time, timeNano) plus pier's `seq`, a number that grows by one per event for
 * this daemon's life, and, for container events, the record's `revision` when the engine gives one.
 *
 * The bus keeps the last `capacity` events in a ring, so a reader that asks `since` a time in the
 * past gets them replayed before the live ones (docker keeps such a buffer too). A reader that
 * falls behind does not grow pierd's memory: each subscription queues at most `maxQueued` events,
 * and one that overflows is ended with an error the server writes as its last line.
 *
 * Container events come from the engine's `event` emitter (`{ type: <action>, id, name, … }`);
 * attributes the emitter leaves out (the image, the labels) are taken from the container's record,
 * and remembered so a `destroy` — sent after the record is gone — still carries them.
 */
import { PierError } from '../../common/errors.ts';

export type EventType = 'container' | 'network' | 'volume';

export interface PierEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** Unix seconds. */
  time: number;
  /** Unix nanoseconds: more than a double holds exactly, so it is a bigint here and a bare JSON integer on the wire (eventLine). */
  timeNano: bigint;
  /** pier: this daemon's event number, 1, 2, 3, … */
  seq: number;
  /** pier: the container record's revision after the change, when known. */
  revision?: number;
  // docker's older fields, still sent for container events (scripts read {{.Status}} and {{.ID}})
  status?: string;
  id?: string;
  from?: string;
}

/** What the engine's emitter sends (today: type, id, name, exitCode; the state machine adds more). */
export interface EngineEvent {
  type: string;
  id: string;
  name?: string;
  exitCode?: number;
  revision?: number;
  image?: string;
  signal?: string;
  /** health_status: the new status. */
  health?: string;
  [k: string]: unknown;
}

/** The actions each type has in docker; a filter naming any other is refused. */
export const ACTIONS: Record<EventType, readonly string[]> = {
  container: ['attach', 'create', 'destroy', 'die', 'exec_create', 'exec_start', 'exec_die', 'health_status', 'kill', 'oom', 'pause', 'rename', 'restart', 'start', 'stop', 'unpause', 'update'],
  network: ['create', 'connect', 'disconnect', 'destroy', 'remove', 'prune'],
  volume: ['create', 'destroy', 'mount', 'unmount', 'prune'],
};
const HEALTH_ACTIONS = ['health_status: starting', 'health_status: healthy', 'health_status: unhealthy'];

// ---- filters ------------------------------------------------------------------------------------

/** docker's event filters pier knows; values within one key are alternatives, keys must all match. */
export const FILTER_KEYS = ['type', 'event', 'container', 'image', 'label', 'network', 'volume', 'scope'] as const;
export type FilterKey = typeof FILTER_KEYS[number];
export type EventFilter = Partial<Record<FilterKey, string[]>>;

/**
 * docker's `filters` query value: `{"key":["v",…]}` or its older form `{"key":{"v":true}}`. Unknown
 * keys and values that can never match (a type or action docker does not have) are refused, one line.
 */
export function parseFilters(text: string | null | undefined): EventFilter {
  if (text === null || text === undefined || text === '') return {};
  let v: unknown;
  try { v = JSON.parse(text); } catch { throw new PierError(`filters: not JSON: ${JSON.stringify(text.slice(0, 100))}`); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PierError('filters: expected a JSON object like {"type":["container"]}');
  const out: EventFilter = {};
  for (const [key, raw] of Object.entries(v)) {
    if (!(FILTER_KEYS as readonly string[]).includes(key)) throw new PierError(`filters: unknown filter ${JSON.stringify(key)} (known: ${FILTER_KEYS.join(', ')})`);
    let values: unknown[];
    if (Array.isArray(raw)) values = raw;
    else if (typeof raw === 'object' && raw !== null) values = Object.entries(raw).filter(([, on]) => on === true).map(([k]) => k);
    else throw new PierError(`filters: ${key}: expected a list of strings`);
    for (const x of values) {
      if (typeof x !== 'string' || x === '') throw new PierError(`filters: ${key}: expected non-empty strings, not ${JSON.stringify(x)}`);
      checkValue(key as FilterKey, x);
    }
    if (values.length) out[key as FilterKey] = values as string[];
  }
  return out;
}

function checkValue(key: FilterKey, v: string): void {
  if (key === 'type' && !(v in ACTIONS)) throw new PierError(`filters: type=${v}: pier sends ${Object.keys(ACTIONS).join(', ')} events`);
  if (key === 'event' && !Object.values(ACTIONS).some((a) => a.includes(v)) && !HEALTH_ACTIONS.includes(v)) {
    throw new PierError(`filters: event=${v}: not an event docker or pier has (container: ${ACTIONS.container.join(' ')}; network: ${ACTIONS.network.join(' ')}; volume: ${ACTIONS.volume.join(' ')})`);
  }
  if (key === 'scope' && v !== 'local' && v !== 'swarm') throw new PierError(`filters: scope=${v}: expected local or swarm`);
}

/** A tag or digest taken off an image reference (docker matches `image=busybox` against busybox:latest). */
function stripTag(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
}

/** One key: absent passes; else any of its values. */
const any = (f: EventFilter, k: FilterKey, test: (v: string) => boolean) => !f[k] || f[k]!.some(test);

/** The object's own filter (container=, network=, volume=): by name, full id, or id prefix. */
function byName(ev: PierEvent, v: string): boolean {
  return ev.Actor.Attributes.name === v || ev.Actor.ID === v || (v.length >= 1 && /^[0-9a-f]+$/.test(v) && ev.Actor.ID.startsWith(v));
}

export function matches(f: EventFilter, ev: PierEvent): boolean {
  return any(f, 'type', (v) => v === ev.Type)
    // `event=health_status` takes every health_status: <status>, as docker's does
    && any(f, 'event', (v) => v === ev.Action || (v === 'health_status' && ev.Action.startsWith('health_status:')))
    && any(f, 'scope', (v) => v === ev.scope)
    && any(f, 'container', (v) => ev.Type === 'container' && byName(ev, v))
    && any(f, 'network', (v) => ev.Type === 'network' && byName(ev, v))
    && any(f, 'volume', (v) => ev.Type === 'volume' && byName(ev, v))
    && any(f, 'image', (v) => {
      const img = ev.Actor.Attributes.image ?? '';
      return img !== '' && (img === v || stripTag(img) === v || img === stripTag(v) && !v.includes('@') && v.endsWith(':latest'));
    })
    // every label= given must hold (docker's), each as key or key=value
    && (f.label ?? []).every((l) => {
      const eq = l.indexOf('=');
      const [k, want] = eq < 0 ? [l, undefined] : [l.slice(0, eq), l.slice(eq + 1)];
      const have = ev.Actor.Attributes[k];
      return have !== undefined && (want === undefined || have === want);
    });
}

// ---- the bus ------------------------------------------------------------------------------------

/** One JSON line of an event (timeNano as an exact integer). */
export function eventLine(ev: PierEvent): string {
  const { timeNano, ...rest } = ev;
  return `${JSON.stringify(rest).slice(0, -1)},"timeNano":${timeNano.toString()}}\n`;
}

export interface SubscribeOptions {
  /** Replay held events at or after this time (ms); without it (and without untilMs) only live events. */
  sinceMs?: number;
  /** End after the last event at or before this time (ms); a time already past ends after the replay. */
  untilMs?: number;
  filter?: EventFilter;
}

export type Next = { event: PierEvent } | { error: string } | { end: true };

/**
 * A reader's view: next() resolves with the next event, an error (it fell too far behind), or the
 * end (until reached, close()). The queue never holds more than maxQueued events.
 */
export class Subscription {
  private queue: PierEvent[] = [];
  private waiting?: (n: Next) => void;
  private final?: Next;
  private timer?: NodeJS.Timeout;

  private readonly bus: EventBus;
  readonly opts: SubscribeOptions;
  private readonly maxQueued: number;

  constructor(bus: EventBus, opts: SubscribeOptions, maxQueued: number) {
    this.bus = bus;
    this.opts = opts;
    this.maxQueued = maxQueued;
  }

  /** @internal: from the bus. */
  offer(ev: PierEvent): void {
    if (this.final) return;
    if (this.opts.untilMs !== undefined && Number(ev.timeNano / 1_000_000n) > this.opts.untilMs) { this.finish({ end: true }); return; }
    if (this.opts.filter && !matches(this.opts.filter, ev)) return;
    if (this.waiting) { const w = this.waiting; this.waiting = undefined; w({ event: ev }); return; }
    if (this.queue.length >= this.maxQueued) {
      this.queue = [];
      this.finish({ error: `events: this reader fell ${this.maxQueued} events behind and was dropped; read faster or narrow the filters` });
      return;
    }
    this.queue.push(ev);
  }

  /** @internal */
  armUntil(ms: number): void {
    this.timer = setTimeout(() => this.finish({ end: true }), Math.max(0, ms));
    this.timer.unref();
  }

  /** @internal */
  finish(n: Next): void {
    if (this.final) return;
    this.final = n;
    if (this.timer) clearTimeout(this.timer);
    this.bus.unsubscribe(this);
    if (this.waiting && this.queue.length === 0) { const w = this.waiting; this.waiting = undefined; w(n); }
  }

  /** Events queued now (tests; the bound is maxQueued). */
  get queued(): number {
    return this.queue.length;
  }

  next(): Promise<Next> {
    const ev = this.queue.shift();
    if (ev) return Promise.resolve({ event: ev });
    if (this.final) return Promise.resolve(this.final);
    return new Promise((r) => { this.waiting = r; });
  }

  close(): void {
    this.finish({ end: true });
  }
}

export interface EventBusOptions {
  /** Events held for replay (default 1024; docker holds 256). */
  capacity?: number;
  /** Events one reader may have queued before it is dropped (default 4096). */
  maxQueued?: number;
  /** Now in unix nanoseconds (tests give a fake); default: the wall clock with hrtime's resolution. */
  nowNs?: () => bigint;
}

/** Wall-clock nanoseconds: Date.now() at start, advanced by the monotonic hrtime. */
function wallNs(): () => bigint {
  const base = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => base + process.hrtime.bigint();
}

export class EventBus {
  private ring: (PierEvent | undefined)[];
  private head = 0;
  private count = 0;
  private seq = 0;
  private lastNs = 0n;
  private subs = new Set<Subscription>();
  private readonly maxQueued: number;
  private readonly nowNs: () => bigint;
  /** Attributes of containers seen, so the destroy after the record is gone still carries them. */
  private known = new Map<string, Record<string, string>>();

  constructor(opts: EventBusOptions = {}) {
    this.ring = new Array(Math.max(1, opts.capacity ?? 1024));
    this.maxQueued = Math.max(1, opts.maxQueued ?? 4096);
    this.nowNs = opts.nowNs ?? wallNs();
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /** Make an event, hold it, and hand it to every live reader. Never blocks. */
  publish(type: EventType, action: string, actorId: string, attributes: Record<string, string>, revision?: number): PierEvent {
    let ns = this.nowNs();
    if (ns <= this.lastNs) ns = this.lastNs + 1n; // time order follows seq order
    this.lastNs = ns;
    const ev: PierEvent = {
      Type: type, Action: action, Actor: { ID: actorId, Attributes: attributes }, scope: 'local',
      time: Number(ns / 1_000_000_000n), timeNano: ns, seq: ++this.seq,
      ...(revision !== undefined ? { revision } : {}),
      ...(type === 'container' ? { status: action, id: actorId, ...(attributes.image ? { from: attributes.image } : {}) } : {}),
    };
    this.ring[(this.head + this.count) % this.ring.length] = ev;
    if (this.count < this.ring.length) this.count++;
    else this.head = (this.head + 1) % this.ring.length;
    for (const s of [...this.subs]) s.offer(ev);
    return ev;
  }

  /**
   * A container event from the engine's emitter. `lookup` gives the record's name, image and labels
   * when it still exists.
   */
  fromEngine(e: EngineEvent, lookup?: (id: string) => { name: string; image: string; labels?: Record<string, string> } | undefined): PierEvent {
    const rec = lookup?.(e.id);
    const attrs: Record<string, string> = { ...(rec ? { ...(rec.labels ?? {}), image: rec.image, name: rec.name } : this.known.get(e.id) ?? {}) };
    if (e.image) attrs.image = e.image;
    if (e.name) attrs.name = e.name;
    if (rec || e.image) this.known.set(e.id, { ...attrs });
    if (e.exitCode !== undefined) attrs.exitCode = String(e.exitCode);
    if (e.signal !== undefined) attrs.signal = String(e.signal);
    const action = e.type === 'health_status' && e.health ? `health_status: ${e.health}` : e.type;
    const ev = this.publish('container', action, e.id, attrs, typeof e.revision === 'number' ? e.revision : undefined);
    if (e.type === 'destroy') this.known.delete(e.id);
    return ev;
  }

  /** Events held now, oldest first. */
  held(): PierEvent[] {
    const out: PierEvent[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.ring[(this.head + i) % this.ring.length]!);
    return out;
  }

  /**
   * A reader: the held events from `sinceMs` (matching its filter) first, then live ones, until
   * `untilMs`. Replay and the switch to live happen in one turn, so nothing falls between them.
   */
  subscribe(opts: SubscribeOptions = {}, nowMs = Date.now()): Subscription {
    const sub = new Subscription(this, opts, this.maxQueued);
    // docker's rule: either bound replays what is held (until alone: all of it up to then)
    if (opts.sinceMs !== undefined || opts.untilMs !== undefined) {
      const from = BigInt(Math.floor(opts.sinceMs ?? 0)) * 1_000_000n;
      for (const ev of this.held()) if (ev.timeNano >= from) sub.offer(ev);
    }
    if (opts.untilMs !== undefined && opts.untilMs <= nowMs) { sub.finish({ end: true }); return sub; }
    this.subs.add(sub);
    if (opts.untilMs !== undefined) sub.armUntil(opts.untilMs - nowMs);
    return sub;
  }

  /** @internal */
  unsubscribe(s: Subscription): void {
    this.subs.delete(s);
  }

  close(): void {
    for (const s of [...this.subs]) s.close();
  }
}

// ---- one bus per engine -------------------------------------------------------------------------

/** What the wiring needs of the engine (narrow, so tests can hand a fake). */
export interface EventSource {
  on(event: 'event', fn: (e: EngineEvent) => void): unknown;
  records: { find(ref: string): { name: string; image: string; config: { labels?: Record<string, string> }; network: { networks: string[] } } | undefined };
  networks: { inspect(ref: string): { id: string; name: string } };
}

const buses = new WeakMap<object, EventBus>();

/**
 * The engine's bus, made and wired to its emitter on first use (the API server and the health
 * monitor share it). A container's start and exit also send docker's network connect and disconnect
 * for each network it is on.
 */
export function eventsOf(engine: EventSource, opts: EventBusOptions = {}): EventBus {
  let bus = buses.get(engine);
  if (bus) return bus;
  const b = (bus = new EventBus(opts));
  buses.set(engine, b);
  const lookup = (id: string) => {
    let r;
    try { r = engine.records.find(id); } catch { return undefined; }
    return r ? { name: r.name, image: r.image, ...(r.config.labels ? { labels: r.config.labels } : {}) } : undefined;
  };
  engine.on('event', (e: EngineEvent) => {
    b.fromEngine(e, lookup);
    if (e.type !== 'start' && e.type !== 'die') return;
    let nets: string[] = [];
    try { nets = engine.records.find(e.id)?.network.networks ?? []; } catch { /* ambiguous: none */ }
    for (const n of nets) {
      let net;
      try { net = engine.networks.inspect(n); } catch { continue; }
      b.publish('network', e.type === 'start' ? 'connect' : 'disconnect', net.id, { container: e.id, name: net.name, type: 'bridge' });
    }
  });
  return b;
}
