/**
 * The build executor: runs a parsed Containerfile stage by stage. Every step has a cache key chained
 * from its parent's; a hit reuses the stored layer and history entry, a miss runs the step (RUN in a
 * container through the runtime library, COPY/ADD packed straight from the sources) and records it.
 * Metadata steps only change the config and add an `empty_layer` history entry.
 */
import { closeSync, constants, copyFileSync, existsSync, fchmodSync, fchownSync, fstatSync, futimesSync, lchownSync, lstatSync, lutimesSync,
  mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, rmdirSync, symlinkSync, unlinkSync, writeFileSync, writeSync, type Stats } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { basename, join, posix, resolve } from 'node:path';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import { fsx } from '../../common/fsx.ts';
import { Runtime, type Spec } from '../../runtime/index.ts';
import type { ImageService } from '../index.ts';
import { formatReference, parseReference, platformOf, type ContainerConfig, type Descriptor, type HistoryEntry, type Platform } from '../oci/index.ts';
import { reachable, type Lease } from '../store/index.ts';
import { diffUpper, packDirectory, type Compression, type LayerBlob } from '../layer/index.ts';
import { Snapshotter } from '../snapshot/index.ts';
import { writeImage, hostPlatform, DEFAULT_PATH } from '../transfer/index.ts';
import { imageSpec, writeBundle, resolveUser } from '../bundle.ts';
import { ContainerfileError, fail, healthcheckOf, parseContainerfile, type Containerfile, type Instruction, type Stage } from './parser.ts';
import { keyValues, processWord, processWords } from './words.ts';
import { DockerIgnore } from './dockerignore.ts';
import { ResolveError, at, fdPath, lstatAt, namesOf, openDirAt, openFileAt, openRoot, readlinkAt, tryWalkAt, walkAt, withEntry, withFd, type Entry } from './anchored.ts';
import { BuildCache, randomId, stepKey, type CacheEntry } from './cache.ts';

export interface BuildOptions {
  /** the build context directory */
  context: string;
  /** the Containerfile (default: <context>/Containerfile, else <context>/Dockerfile) */
  file?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  /** stop after this stage (name or index) */
  target?: string;
  /** reproducible builds: clamp layer mtimes and set every created time to this (seconds) */
  sourceDateEpoch?: number;
  compression?: Compression;
  /** run every step, ignoring (but refreshing) the cache */
  noCache?: boolean;
  /** progress lines (each without its newline) */
  progress?: (line: string) => void;
  warn?: (msg: string) => void;
  /** where RUN containers write: fds (or 'ignore'/'inherit') for their stdout and stderr */
  runOutput?: [number | 'ignore' | 'inherit', number | 'ignore' | 'inherit'];
  /**
   * The network RUN steps get (docker's `--network`): `bridge` a namespace of their own on the
   * engine's default network (needs `networkProvider`), `none` a namespace of their own with only
   * `lo`, `host` the host's. Default: `bridge` when a provider is given, else `none`. It is not part
   * of any step's cache key.
   */
  network?: BuildNetworkMode;
  networkProvider?: BuildNetworkProvider;
}

export type BuildNetworkMode = 'bridge' | 'host' | 'none';

/** A network namespace on a bridge network, lent to the build until release(). */
export interface BuildSandbox {
  netnsPath: string;
  /** /etc/hosts and /etc/resolv.conf content for containers in it */
  hosts: string;
  resolvConf: string;
  /** Why the sandbox is gone before release() (its owner went away), or undefined while it is usable. */
  lost(): string | undefined;
  release(): Promise<void>;
}

/**
 * Who makes bridge sandboxes: the image layer does not own networks (bridges, IPAM, iptables are
 * the engine's), so the CLI injects one that asks pierd.
 */
export interface BuildNetworkProvider {
  sandbox(hostname: string): Promise<BuildSandbox>;
}

export interface StepReport {
  stage: number;
  instruction: string;
  cached: boolean;
  /** the layer the step made (cached or new) */
  layer?: string;
}

export interface BuildResult {
  /** the manifest digest: pier's image ID */
  id: string;
  manifestDigest: string;
  configDigest: string;
  tags: string[];
  steps: StepReport[];
}

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  diffId: string;
}

interface StageState {
  index: number;
  name?: string;
  key: string;
  layers: Layer[];
  config: ContainerConfig;
  history: HistoryEntry[];
  platform: Platform;
  shell: string[];
  /** ARGs declared in this stage, with their values (undefined: declared, no value) */
  args: Map<string, string | undefined>;
  cmdSet: boolean;
  /** after a miss, every later step of the stage runs too */
  missed: boolean;
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const RUN_HOSTNAME = 'pier-build';
/** Paths a RUN container gets whether or not the image has them; dropped from its layer when new. */
const RUN_STUBS = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'dev', 'proc', 'sys', 'etc'];

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

function envMap(env: string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i < 0) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

function setEnv(env: string[] | undefined, key: string, value: string): string[] {
  const out = (env ?? []).filter((e) => e !== key && !e.startsWith(`${key}=`));
  out.push(`${key}=${value}`);
  return out;
}

/** `docker build`'s well-known ARGs need no declaration to be accepted. */
const PREDEFINED_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

export class Builder {
  readonly svc: ImageService;
  readonly opts: BuildOptions;
  readonly snap: Snapshotter;
  readonly cache: BuildCache;
  readonly runtime: Runtime;
  private readonly imagesDir: string;
  private readonly tmpDir: string;
  private cf!: Containerfile;
  private ignore!: DockerIgnore;
  private lease?: Lease;
  private readonly states = new Map<number, StageState>();
  private readonly usedArgs = new Set<string>();
  private readonly metaArgs = new Map<string, string | undefined>();
  private step = 0;
  private totalSteps = 0;
  private readonly reports: StepReport[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private readonly network: BuildNetworkMode;
  /** the bridge sandbox every RUN of this build shares, made at the first RUN that runs */
  private sandbox?: Promise<BuildSandbox>;

  constructor(svc: ImageService, opts: BuildOptions) {
    this.svc = svc;
    this.opts = opts;
    this.imagesDir = svc.content.root;
    this.snap = new Snapshotter(this.imagesDir);
    this.cache = new BuildCache(this.imagesDir);
    this.runtime = new Runtime({ root: join(svc.root, 'build-runtime') });
    this.tmpDir = join(this.imagesDir, 'build-tmp');
    const mode = opts.network ?? (opts.networkProvider ? 'bridge' : 'none');
    if (mode !== 'bridge' && mode !== 'host' && mode !== 'none') throw new PierError(`invalid network mode ${JSON.stringify(mode)}: use bridge, host or none`);
    if (mode === 'bridge' && !opts.networkProvider) throw new PierError('network mode bridge needs the engine (no network provider given)');
    this.network = mode;
  }

  private get epoch(): number | undefined {
    return this.opts.sourceDateEpoch;
  }

  private log(line: string): void {
    this.opts.progress?.(line);
  }

  private err(ins: Instruction, msg: string): never {
    fail(this.cf.file, ins.line, ins.kind, msg);
  }

  /** Run `fn`, turning a PierError (say, a bad substitution) into one naming file, line and instruction. */
  private at<T>(ins: Instruction, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ContainerfileError || !(err instanceof PierError)) throw err;
      this.err(ins, err.message);
    }
  }

  async build(): Promise<BuildResult> {
    const context = resolve(this.opts.context);
    if (!existsSync(context) || !lstatSync(context).isDirectory()) throw new PierError(`build context ${context} is not a directory`);
    const file = this.opts.file ?? ['Containerfile', 'Dockerfile'].map((f) => join(context, f)).find((f) => existsSync(f)) ?? join(context, 'Containerfile');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new PierError(`cannot read ${file}: ${messageOf(err)}`);
    }
    this.cf = parseContainerfile(text, basename(file));
    this.ignore = DockerIgnore.load(context);
    const tags = (this.opts.tags ?? []).map((t) => {
      try { return formatReference(parseReference(t)); } catch (err) { throw new PierError(`invalid tag ${JSON.stringify(t)}: ${messageOf(err)}`); }
    });
    for (const t of tags) if (t.includes('@')) throw new PierError(`invalid tag ${JSON.stringify(t)}: a tag cannot carry a digest`);

    this.svc.content.init();
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    await this.sweepDeadBuilds();
    this.lease = this.svc.content.newLease();
    try {
      for (const a of this.cf.metaArgs) {
        this.at(a, () => {
          for (const w of processWords(a.args, this.metaVars(), this.cf.escape)) {
            const eq = w.indexOf('=');
            const name = eq < 0 ? w : w.slice(0, eq);
            const given = this.buildArg(name);
            this.metaArgs.set(name, given ?? (eq < 0 ? undefined : w.slice(eq + 1)));
          }
        });
      }
      const target = this.targetStage();
      const needed = this.neededStages(target);
      this.totalSteps = needed.reduce((a, s) => a + 1 + s.instructions.length, 0);
      let last!: StageState;
      for (const stage of needed) last = await this.runStage(stage, context);
      this.warnUnusedArgs();

      const created = this.epoch !== undefined ? new Date(this.epoch * 1000).toISOString() : last.history[last.history.length - 1]?.created ?? new Date().toISOString();
      const img = await writeImage(this.svc.content, {
        layers: last.layers,
        config: last.config,
        created,
        history: last.history,
        platform: last.platform,
      }, this.lease);
      const descriptor: Descriptor = img.descriptor;
      for (const t of tags) {
        await this.svc.refs.set(t, descriptor, async () => { await reachable(this.svc.content, descriptor, { requirePresent: true }); });
      }
      return { id: descriptor.digest, manifestDigest: descriptor.digest, configDigest: img.manifest.config.digest, tags, steps: this.reports };
    } finally {
      // A sandbox still being set up (a step failed meanwhile) is waited for, so its release is among the cleanups.
      await this.sandbox?.catch(() => undefined);
      for (const c of this.cleanups.reverse()) {
        try { await c(); } catch (err) { this.opts.warn?.(`cleanup: ${messageOf(err)}`); }
      }
      this.lease.release();
    }
  }

  /**
   * What a build killed with SIGKILL left behind: its RUN container (its runtime helper outlives
   * the CLI, so the container keeps running), that container's state, mounts and temp files, each
   * named after the dead build's pid. Another build alive on this root keeps its own.
   */
  private async sweepDeadBuilds(): Promise<void> {
    const dead = (name: string, re: RegExp) => {
      const m = re.exec(name);
      if (!m || Number(m[1]) === process.pid) return false;
      try { process.kill(Number(m[1]), 0); return false; } catch (err) { return errnoOf(err) === 'ESRCH'; }
    };
    const warn = (what: string) => (err: unknown) => this.opts.warn?.(`removing ${what} of a killed build: ${messageOf(err)}`);
    const names = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };
    for (const c of this.runtime.list()) if (dead(c.id, /^pier-build-(\d+)-/)) await this.runtime.delete(c.id, true).catch(warn(`container ${c.id}`));
    for (const key of names(join(this.imagesDir, 'mounts'))) if (dead(key, /^build-(\d+)-/)) await this.snap.remove(key).catch(warn(`mount ${key}`));
    for (const n of names(this.tmpDir)) if (dead(n, /^(?:bundle-pier-build|copy|add|layer)-(\d+)-/)) rmSync(join(this.tmpDir, n), { recursive: true, force: true });
  }

  private buildArg(name: string): string | undefined {
    const v = this.opts.buildArgs?.[name];
    if (v !== undefined) this.usedArgs.add(name);
    return v;
  }

  private warnUnusedArgs(): void {
    const unused = Object.keys(this.opts.buildArgs ?? {}).filter((k) => !this.usedArgs.has(k) && !PREDEFINED_ARGS.has(k));
    if (unused.length) this.opts.warn?.(`one or more build-args [${unused.join(' ')}] were not consumed`);
  }

  private metaVars(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of this.metaArgs) if (v !== undefined) m.set(k, v);
    return m;
  }

  private stageByRef(ref: string, before: number): Stage | undefined {
    const lower = ref.toLowerCase();
    const byName = this.cf.stages.find((s) => s.name === lower && s.index < before);
    if (byName) return byName;
    if (/^\d+$/.test(ref)) {
      const i = Number(ref);
      if (i < before) return this.cf.stages[i];
    }
    return undefined;
  }

  private targetStage(): Stage {
    const t = this.opts.target;
    if (t === undefined) return this.cf.stages[this.cf.stages.length - 1];
    const s = this.stageByRef(t, this.cf.stages.length);
    if (!s) throw new PierError(`--target: no stage named ${JSON.stringify(t)} in ${this.cf.file}`);
    return s;
  }

  /** The stages the target depends on (FROM <stage>, COPY --from=<stage>), in file order. */
  private neededStages(target: Stage): Stage[] {
    const need = new Set<number>();
    const visit = (s: Stage) => {
      if (need.has(s.index)) return;
      need.add(s.index);
      const refs = [s.from.args.split(/\s+/)[0], ...s.instructions.filter((i) => i.kind === 'COPY' && i.flags.from).map((i) => i.flags.from)];
      for (const r of refs) {
        if (r.includes('$')) {
          // Known only once substituted: build every earlier stage.
          for (const e of this.cf.stages) if (e.index < s.index) visit(e);
          continue;
        }
        const dep = this.stageByRef(r, s.index);
        if (dep) visit(dep);
      }
    };
    visit(target);
    return this.cf.stages.filter((s) => need.has(s.index));
  }

  private progressStep(ins: Instruction): void {
    this.step++;
    this.log(`STEP ${this.step}/${this.totalSteps}: ${ins.original}`);
  }

  private now(): string {
    return new Date((this.epoch ?? Date.now() / 1000) * 1000).toISOString();
  }

  private async runStage(stage: Stage, context: string): Promise<StageState> {
    const from = stage.from;
    this.progressStep(from);
    const fromRef = this.at(from, () => processWord(from.args.split(/\s+/)[0], this.metaVars(), this.cf.escape));
    if (from.flags.platform) {
      const want = this.at(from, () => processWord(from.flags.platform, this.metaVars(), this.cf.escape));
      const host = hostPlatform();
      if (want !== `${host.os}/${host.architecture}`) this.err(from, `--platform=${want}: pier build only builds for ${host.os}/${host.architecture}`);
    }
    let st: StageState;
    const base = { index: stage.index, name: stage.name, args: new Map<string, string | undefined>(), cmdSet: false, missed: false };
    const dep = this.stageByRef(fromRef, stage.index);
    if (fromRef === 'scratch') {
      st = { ...base, key: stepKey('', ['scratch']), layers: [], config: { Env: [DEFAULT_PATH] }, history: [], platform: hostPlatform(), shell: DEFAULT_SHELL };
    } else if (dep && this.states.has(dep.index)) {
      const d = this.states.get(dep.index)!;
      st = { ...base, key: d.key, layers: [...d.layers], config: clone(d.config), history: clone(d.history), platform: d.platform, shell: [...d.shell] };
    } else {
      let img;
      try {
        img = await this.svc.resolve(fromRef);
      } catch (err) {
        if (err instanceof PierError && /not found/.test(err.message)) {
          const shown = (() => { try { return formatReference(parseReference(fromRef)); } catch { return fromRef; } })();
          this.err(from, `image ${JSON.stringify(shown)} not found locally (pier has no registry access yet; use pier image bootstrap/import)`);
        }
        throw err instanceof PierError ? new ContainerfileError(`${this.cf.file}:${from.line}: FROM: ${err.message}`) : err;
      }
      const layers = img.manifest.layers.map((l, i) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, diffId: img.config.rootfs.diff_ids[i] }));
      st = {
        ...base, key: stepKey('', ['image', img.manifestDigest]), layers, config: clone(img.config.config ?? {}), history: clone(img.config.history ?? []),
        platform: platformOf(img.config),
        shell: DEFAULT_SHELL,
      };
    }
    this.log(`---> ${short(st.key)}`);
    this.states.set(stage.index, st);
    for (const ins of stage.instructions) {
      this.progressStep(ins);
      await this.runInstruction(st, ins, context);
    }
    return st;
  }

  /** Variables for substitution: the stage's ARGs, overridden by its ENV. */
  private vars(st: StageState): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of st.args) if (v !== undefined) m.set(k, v);
    for (const [k, v] of envMap(st.config.Env)) m.set(k, v);
    return m;
  }

  private word(st: StageState, ins: Instruction, s: string): string {
    return this.at(ins, () => processWord(s, this.vars(st), this.cf.escape));
  }

  private words(st: StageState, ins: Instruction, s: string): string[] {
    return this.at(ins, () => processWords(s, this.vars(st), this.cf.escape));
  }

  /** Command for RUN/CMD/ENTRYPOINT: exec form as is, shell form through SHELL. */
  private command(st: StageState, ins: Instruction): string[] {
    return ins.json ?? [...st.shell, ins.args];
  }

  private async runInstruction(st: StageState, ins: Instruction, context: string): Promise<void> {
    switch (ins.kind) {
      case 'RUN': return this.doRun(st, ins);
      case 'COPY':
      case 'ADD': return this.doCopy(st, ins, context);
      default: return this.doMeta(st, ins);
    }
  }

  /** Config-only instructions. */
  private doMeta(st: StageState, ins: Instruction): void {
    const c = st.config;
    let shown = ins.args;
    const keyExtra: unknown[] = [];
    switch (ins.kind) {
      case 'ARG': {
        const parts: string[] = [];
        for (const w of this.words(st, ins, ins.args)) {
          const eq = w.indexOf('=');
          const name = eq < 0 ? w : w.slice(0, eq);
          const given = this.buildArg(name);
          const value = given ?? (eq >= 0 ? w.slice(eq + 1) : this.metaArgs.get(name));
          st.args.set(name, value);
          parts.push(value === undefined ? name : `${name}=${value}`);
        }
        shown = parts.join(' ');
        keyExtra.push(parts);
        break;
      }
      case 'ENV': {
        const kvs = this.at(ins, () => keyValues(ins.args, this.vars(st), this.cf.escape, 'ENV'));
        for (const [k, v] of kvs) {
          if (!/^[^=\s]+$/.test(k)) this.err(ins, `invalid variable name ${JSON.stringify(k)}`);
          c.Env = setEnv(c.Env, k, v);
        }
        shown = kvs.map(([k, v]) => `${k}=${v}`).join(' ');
        break;
      }
      case 'LABEL': {
        const kvs = this.at(ins, () => keyValues(ins.args, this.vars(st), this.cf.escape, 'LABEL'));
        c.Labels = { ...(c.Labels ?? {}) };
        for (const [k, v] of kvs) c.Labels[k] = v;
        shown = kvs.map(([k, v]) => `${k}=${v}`).join(' ');
        break;
      }
      case 'MAINTAINER':
        this.err(ins, 'MAINTAINER is deprecated and not supported by pier build: use LABEL org.opencontainers.image.authors=…');
        break;
      case 'EXPOSE': {
        const ports: string[] = [];
        for (const w of this.words(st, ins, ins.args)) {
          const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
          if (!m) this.err(ins, `invalid port ${JSON.stringify(w)} (want PORT[-END][/tcp|udp|sctp])`);
          const lo = Number(m[1]);
          const hi = m[2] ? Number(m[2]) : lo;
          if (lo < 1 || hi > 65535 || hi < lo) this.err(ins, `invalid port range ${JSON.stringify(w)}`);
          for (let p = lo; p <= hi; p++) ports.push(`${p}/${(m[3] ?? 'tcp').toLowerCase()}`);
        }
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
        for (const p of ports) c.ExposedPorts[p] = {};
        shown = ports.join(' ');
        break;
      }
      case 'VOLUME': {
        const vols = ins.json ? ins.json.map((v) => this.word(st, ins, v)) : this.words(st, ins, ins.args);
        c.Volumes = { ...(c.Volumes ?? {}) };
        for (const v of vols) {
          if (v === '') this.err(ins, 'empty volume path');
          c.Volumes[v] = {};
        }
        shown = JSON.stringify(vols);
        break;
      }
      case 'USER':
        c.User = this.word(st, ins, ins.args);
        if (c.User === '') this.err(ins, 'needs a user');
        shown = c.User;
        break;
      case 'WORKDIR': {
        const w = this.word(st, ins, ins.args);
        c.WorkingDir = posix.resolve(c.WorkingDir || '/', w);
        shown = c.WorkingDir;
        break;
      }
      case 'STOPSIGNAL':
        c.StopSignal = this.word(st, ins, ins.args);
        if (!/^(SIG[A-Z0-9+-]+|\d+)$/.test(c.StopSignal)) this.err(ins, `invalid signal ${JSON.stringify(c.StopSignal)}`);
        shown = c.StopSignal;
        break;
      case 'HEALTHCHECK':
        // the last one wins, as in docker; NONE turns off one inherited from the base image
        c.Healthcheck = healthcheckOf(ins, this.cf.file);
        shown = JSON.stringify(c.Healthcheck);
        break;
      case 'SHELL':
        st.shell = [...ins.json!];
        shown = JSON.stringify(st.shell);
        break;
      case 'CMD':
        c.Cmd = this.command(st, ins);
        st.cmdSet = true;
        shown = JSON.stringify(c.Cmd);
        break;
      case 'ENTRYPOINT': {
        const ep = this.command(st, ins);
        if (ep.length === 0) delete c.Entrypoint;
        else c.Entrypoint = ep;
        // An ENTRYPOINT resets a CMD inherited from the base image (not one set in this stage).
        if (!st.cmdSet) delete c.Cmd;
        shown = JSON.stringify(ep);
        break;
      }
      default:
        this.err(ins, 'unsupported instruction');
    }
    const key = stepKey(st.key, [ins.kind, shown, ...keyExtra]);
    const hit = this.lookup(st, key);
    const history = hit?.history ?? { created: this.now(), created_by: `${ins.kind} ${shown}`, comment: 'pier build', empty_layer: true };
    if (!hit) this.cache.put(key, { history });
    st.history.push(history);
    this.finishStep(st, key, hit !== undefined, undefined);
  }

  private lookup(st: StageState, key: string): CacheEntry | undefined {
    if (this.opts.noCache || st.missed) return undefined;
    const e = this.cache.get(key);
    if (!e) return undefined;
    if (e.layer && !this.svc.content.has(e.layer.digest)) return undefined;
    if (e.layer) this.lease!.add(e.layer.digest);
    return e;
  }

  private finishStep(st: StageState, key: string, cached: boolean, layer: Layer | undefined): void {
    st.key = key;
    if (!cached) st.missed = true;
    if (layer) st.layers.push(layer);
    this.reports.push({ stage: st.index, instruction: this.lastInstruction, cached, layer: layer?.digest });
    this.log(cached ? `---> Using cache ${short(layer?.digest ?? key)}` : `---> ${short(layer?.digest ?? key)}`);
  }

  private get lastInstruction(): string {
    return `STEP ${this.step}`;
  }

  /** The snapshot chain of a state's layers (unpacked on demand). */
  private async chainOf(st: { layers: Layer[] }): Promise<string | undefined> {
    if (st.layers.length === 0) return undefined;
    return this.snap.unpack(st.layers.map((l) => ({ diffId: l.diffId, mediaType: l.mediaType, open: () => this.svc.content.readStream(l.digest) })));
  }

  /** A prepared rootfs, removed when the build ends (or earlier via the returned release). */
  private async mount(st: { layers: Layer[] }, readonly: boolean): Promise<{ rootfs: string; upper?: string; release: () => Promise<void> }> {
    const chain = await this.chainOf(st);
    const key = `build-${process.pid}-${randomId()}`;
    const p = await this.snap.prepare(key, chain, { readonly });
    let done = false;
    const release = async () => {
      if (done) return;
      done = true;
      await this.snap.remove(key);
    };
    this.cleanups.push(release);
    return { ...p, release };
  }

  /** The bridge sandbox all RUN steps of this build share, asked for once; released when the build ends. */
  private bridgeSandbox(): Promise<BuildSandbox> {
    this.sandbox ??= this.opts.networkProvider!.sandbox(RUN_HOSTNAME).then((sb) => {
      this.cleanups.push(() => sb.release());
      return sb;
    });
    return this.sandbox;
  }

  /** Write a layer through `produce` into a temp file, then into the content store. */
  private async storeLayer(produce: (dest: string) => Promise<LayerBlob>): Promise<Layer> {
    const tmp = join(this.tmpDir, `layer-${process.pid}-${randomId()}.tar`);
    try {
      const blob = await produce(tmp);
      await this.svc.content.writeFile(tmp, { digest: blob.digest, size: blob.size }, this.lease);
      return { mediaType: blob.mediaType, digest: blob.digest, size: blob.size, diffId: blob.diffId };
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private packOpts(): { compression: Compression; sourceDateEpoch?: number } {
    return { compression: this.opts.compression ?? 'gzip', ...(this.epoch !== undefined ? { sourceDateEpoch: this.epoch } : {}) };
  }

  private async doRun(st: StageState, ins: Instruction): Promise<void> {
    const args = this.command(st, ins);
    // ARGs reach the RUN as environment (ENV of the same name wins), like docker.
    const env = envMap(st.config.Env);
    const argEnv: string[] = [];
    for (const [k, v] of st.args) if (v !== undefined && !env.has(k)) argEnv.push(`${k}=${v}`);
    const key = stepKey(st.key, ['RUN', args, argEnv, st.config.User ?? '', st.config.WorkingDir ?? '', st.config.Env ?? []]);
    const shown = ins.json ? JSON.stringify(args) : args.join(' ');
    const hit = this.lookup(st, key);
    if (hit) {
      st.history.push(hit.history);
      this.finishStep(st, key, true, hit.layer);
      return;
    }
    if (this.snap.mode !== 'overlay') this.err(ins, 'RUN needs the overlay snapshotter (overlayfs unavailable here or PIER_SNAPSHOTTER=copy)');
    // pierd sets the build's sandbox up (at its first RUN) while the rootfs is prepared here.
    const sandbox = this.network === 'bridge' ? this.bridgeSandbox() : undefined;
    sandbox?.catch(() => {});   // awaited below; a failing mount first must not leave it unhandled
    const m = await this.mount(st, false);
    const id = `pier-build-${process.pid}-${randomId()}`;
    const bundle = join(this.tmpDir, `bundle-${id}`);
    try {
      const cwd = st.config.WorkingDir || '/';
      // What the image had where the runtime puts its stubs, and the working directory, which the
      // runtime needs and docker makes too (it belongs in this layer). Both inside the rootfs: a
      // link the image has there (say /w -> /etc) means the image's /etc, never the host's.
      const before = new Map<string, Stats>();
      withFd(openRoot(m.rootfs), (root) => {
        for (const p of RUN_STUBS) {
          const e = tryWalkAt(root, p, NO_FOLLOW);
          if (e) withEntry(e, () => before.set(p, e.st));
        }
        this.at(ins, () => closeSync(walkAt(root, cwd, { followLast: true, followInner: true, create: 0o755 }).dir));
      });
      let spec: Spec;
      try {
        spec = imageSpec({ architecture: st.platform.architecture, os: st.platform.os, config: st.config, rootfs: { type: 'layers', diff_ids: [] } },
          { rootfs: m.rootfs, args, env: argEnv, cwd, hostname: RUN_HOSTNAME });
      } catch (err) {
        this.err(ins, messageOf(err));
      }
      spec.process!.terminal = false;
      // As docker build: no_new_privs off, so a RUN step's sudo or su works (the image's own set-id
      // programs; the host's mount of this rootfs is nosuid, so they elevate only inside).
      spec.process!.noNewPrivileges = false;
      await this.networkSpec(spec, bundle, ins, sandbox);
      writeBundle(bundle, spec);
      const out = this.opts.runOutput ?? ['inherit', 'inherit'];
      let status: number;
      try {
        status = await this.runtime.run({ id, bundle, stdio: ['ignore', out[0], out[1]] });
      } catch (err) {
        await this.runtime.delete(id, true).catch(() => undefined);
        if (err instanceof PierError) this.err(ins, err.message);
        throw err;
      }
      if (status !== 0) this.err(ins, `exit status ${status}`);
      const upper = m.upper!;
      withFd(openRoot(upper), (u) => { for (const p of RUN_STUBS) dropStub(u, p, before.get(p)); });
      const layer = await this.storeLayer((dest) => diffUpper(upper, dest, this.packOpts()));
      const history: HistoryEntry = { created: this.now(), created_by: `RUN ${shown}`, comment: 'pier build' };
      this.cache.put(key, { layer, history });
      st.history.push(history);
      this.finishStep(st, key, false, layer);
    } finally {
      rmSync(bundle, { recursive: true, force: true });
      await m.release();
    }
  }

  /**
   * The RUN container's network. bridge: the build's sandbox (a netns on the default network, with
   * egress; the host's loopback and addresses are not in it), its hosts and resolv.conf; none: a
   * netns of the runtime's own, with only `lo`; host: the host's namespace, /sys bound from the host
   * (sysfs can only be mounted from a network namespace of one's own) and the host's resolv.conf.
   */
  private async networkSpec(spec: Spec, bundle: string, ins: Instruction, sandbox: Promise<BuildSandbox> | undefined): Promise<void> {
    const linux = spec.linux!;
    if (this.network === 'none') return;
    if (this.network === 'host') {
      linux.namespaces = linux.namespaces!.filter((n) => n.type !== 'network');
      spec.mounts = spec.mounts!.map((mt) => (mt.destination === '/sys' ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : mt))
        .filter((mt) => mt.destination !== '/sys/fs/cgroup');
      if (existsSync('/etc/resolv.conf')) spec.mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: '/etc/resolv.conf', options: ['rbind', 'ro'] });
      return;
    }
    let sb: BuildSandbox;
    try {
      sb = await sandbox!;
    } catch (err) {
      if (err instanceof PierError) this.err(ins, `network sandbox: ${err.message}`);
      throw err;
    }
    const lost = sb.lost();
    if (lost) this.err(ins, `network sandbox: ${lost}`);
    linux.namespaces = linux.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: sb.netnsPath } : n));
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'hosts'), sb.hosts);
    writeFileSync(join(bundle, 'resolv.conf'), sb.resolvConf);
    spec.mounts!.push(
      { destination: '/etc/hosts', type: 'bind', source: join(bundle, 'hosts'), options: ['rbind', 'rprivate', 'ro'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: join(bundle, 'resolv.conf'), options: ['rbind', 'rprivate', 'ro'] },
    );
  }

  private async doCopy(st: StageState, ins: Instruction, context: string): Promise<void> {
    const kind = ins.kind;
    const all = ins.json ? ins.json.map((w) => this.word(st, ins, w)) : this.words(st, ins, ins.args);
    if (all.length < 2) this.err(ins, 'needs a source and a destination');
    const dest = all[all.length - 1];
    const srcs = all.slice(0, -1);
    for (const s of srcs) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) this.err(ins, `${JSON.stringify(s)}: remote URLs are not supported (pier build fetches nothing from the network)`);
      if (/^git@/.test(s)) this.err(ins, `${JSON.stringify(s)}: git sources are not supported`);
    }
    const chown = ins.flags.chown !== undefined ? this.word(st, ins, ins.flags.chown) : undefined;
    const chmodText = ins.flags.chmod !== undefined ? this.word(st, ins, ins.flags.chmod) : undefined;
    if (chmodText !== undefined && !/^[0-7]{3,4}$/.test(chmodText)) this.err(ins, `--chmod=${chmodText}: only octal modes are supported`);
    const chmod = chmodText !== undefined ? parseInt(chmodText, 8) : undefined;

    // The source tree: the context, another stage's rootfs, or an image's.
    let srcRoot: string;
    let fromKey: string | undefined;
    let fromState: { layers: Layer[] } | undefined;
    let fromStage = false;
    const fromFlag = ins.flags.from !== undefined ? this.word(st, ins, ins.flags.from) : undefined;
    if (fromFlag !== undefined) {
      const dep = this.stageByRef(fromFlag, st.index);
      if (dep) {
        const d = this.states.get(dep.index);
        if (!d) this.err(ins, `--from=${fromFlag}: stage was not built`);
        fromKey = d.key;
        fromState = d;
        fromStage = true;
      } else if (fromFlag === String(st.index) || fromFlag.toLowerCase() === st.name) {
        this.err(ins, `--from=${fromFlag}: a stage cannot copy from itself`);
      } else {
        let img;
        try {
          img = await this.svc.resolve(fromFlag);
        } catch (err) {
          if (err instanceof PierError) this.err(ins, `--from=${fromFlag}: no such stage, and ${err.message.replace(/not found$/, 'not found locally')}`);
          throw err;
        }
        fromKey = img.manifestDigest;
        fromState = { layers: img.manifest.layers.map((l, i) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, diffId: img.config.rootfs.diff_ids[i] })) };
      }
      srcRoot = '';
    } else {
      srcRoot = context;
    }

    let release: (() => Promise<void>) | undefined;
    let srcFd: number | undefined;
    try {
      if (fromState) {
        const m = await this.mount(fromState, true);
        srcRoot = m.rootfs;
        release = m.release;
      }
      // Everything below reads the source tree through this fd only (see anchored.ts).
      srcFd = openRoot(srcRoot);
      const src: SourceTree = { fd: srcFd, what: fromState ? `the root filesystem of ${fromStage ? 'stage' : 'image'} ${JSON.stringify(fromFlag)}` : 'the build context', context: !fromState };
      const ignore = fromState ? undefined : this.ignore;
      const sources = this.at(ins, () => expandSources(src, srcs, ignore));
      if (sources.length === 0) this.err(ins, 'no source files were specified');
      const multi = sources.length > 1 || srcs.some((s) => /[*?[]/.test(s));
      // Cache key: the selected files' names, types, modes, owners and contents (or the source stage's key).
      const contentKey = fromKey ?? this.at(ins, () => digestSources(src, sources, ignore));
      const shown = `${fromFlag !== undefined ? `--from=${fromFlag} ` : ''}${chown !== undefined ? `--chown=${chown} ` : ''}${chmodText !== undefined ? `--chmod=${chmodText} ` : ''}${srcs.join(' ')} ${dest}`;
      const key = stepKey(st.key, [kind, srcs, dest, chown ?? null, chmod ?? null, fromFlag ?? null, contentKey, st.config.WorkingDir ?? '']);
      const hit = this.lookup(st, key);
      if (hit) {
        st.history.push(hit.history);
        this.finishStep(st, key, true, hit.layer);
        return;
      }
      const cur = await this.mount(st, true);
      const tree = join(this.tmpDir, `copy-${process.pid}-${randomId()}`);
      mkdirSync(tree, { mode: 0o755 });
      let imageFd: number | undefined;
      let treeFd: number | undefined;
      try {
        const owner = chown !== undefined ? this.at(ins, () => ownerOf(cur.rootfs, chown)) : fromState ? undefined : { uid: 0, gid: 0 };
        imageFd = openRoot(cur.rootfs);
        treeFd = openRoot(tree);
        const destAbs = posix.resolve(st.config.WorkingDir || '/', dest);
        const destIsDir = dest.endsWith('/') || dest.endsWith('/.') || multi || isDirIn(imageFd, destAbs);
        if (multi && !dest.endsWith('/') && !isDirIn(imageFd, destAbs)) this.err(ins, `when copying several sources the destination must be a directory ending in "/": ${dest}`);
        const copier = new TreeCopier(treeFd, imageFd, owner, chmod, ignore);
        for (const s of sources) {
          // A source named through a symlink is copied as what it points to, inside its tree.
          const e = this.at(ins, () => resolveSource(src, s.rel));
          withEntry(e, () => {
            if (e.st.isDirectory()) {
              copier.copyDirContents(e, s.rel, destAbs);
            } else if (kind === 'ADD' && !fromState && e.st.isFile() && isTarArchive(e)) {
              const staging = join(this.tmpDir, `add-${process.pid}-${randomId()}`);
              try {
                mkdirSync(staging, { mode: 0o700 });
                this.at(ins, () => extractTar(e, staging));
                withFd(openRoot(staging), (sfd) => copier.merge(sfd, destAbs));
              } finally {
                rmSync(staging, { recursive: true, force: true });
              }
            } else {
              const target = destIsDir ? posix.join(destAbs, posix.basename(s.rel)) : destAbs;
              withFd(copier.ensureDir(posix.dirname(target), false), (d) => this.at(ins, () => copier.copyEntry(e.dir, e.name, e.st, d, posix.basename(target), s.rel)));
            }
          });
        }
        // An open fd would keep the mount busy.
        closeSync(imageFd);
        imageFd = undefined;
        await cur.release();
        const layer = await this.storeLayer((d) => packDirectory(tree, d, this.packOpts()));
        const history: HistoryEntry = { created: this.now(), created_by: `${kind} ${shown}`, comment: 'pier build' };
        this.cache.put(key, { layer, history });
        st.history.push(history);
        this.finishStep(st, key, false, layer);
      } finally {
        if (imageFd !== undefined) closeSync(imageFd);
        if (treeFd !== undefined) closeSync(treeFd);
        rmSync(tree, { recursive: true, force: true });
        await cur.release();
      }
    } finally {
      if (srcFd !== undefined) closeSync(srcFd);
      await release?.();
    }
  }
}

const NO_FOLLOW = { followLast: false, followInner: false };
const FOLLOW = { followLast: true, followInner: true };
const ROOT_OWNER = { uid: 0, gid: 0 };
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/**
 * Remove from the upper dir what only the runtime made: an empty file or dir the image did not have,
 * or a dir the image had that was copied up just to hold such stubs (empty, owner and mode unchanged).
 * The upper dir is what the RUN left; a symlink anywhere on the way (say /etc -> /) means the path
 * is not a stub, and nothing is followed.
 */
function dropStub(upper: number, rel: string, before: Stats | undefined): void {
  const e = tryWalkAt(upper, rel, NO_FOLLOW);
  if (!e) return;
  withEntry(e, ({ dir, name, st }) => {
    const p = at(dir, name);
    if (!before) {
      if (st.isFile() && st.size === 0) unlinkSync(p);
      else if (st.isDirectory()) {
        try { rmdirSync(p); } catch { /* not empty: the RUN put something there, keep it */ }
      }
      return;
    }
    if (!st.isDirectory() || !before.isDirectory()) return;
    if (st.mode !== before.mode || st.uid !== before.uid || st.gid !== before.gid) return;
    for (const x of ['trusted.overlay.opaque', 'user.overlay.opaque']) if (fsx().lgetxattr(p, x) !== null) return;
    try { rmdirSync(p); } catch { /* not empty: keep */ }
  });
}

interface Source {
  /** path relative to the source root, without a leading "/" */
  rel: string;
}

/** A tree COPY reads: its root fd, and what to call it in messages. */
interface SourceTree {
  fd: number;
  what: string;
  /**
   * The build context is a host directory: a link in it to an absolute path or above it names a
   * host file, which is never read. In a root filesystem such a link means that filesystem's own.
   */
  context: boolean;
}

/** One line for a source that does not resolve inside its tree. */
function sourceError(tree: SourceTree, rel: string, err: ResolveError, named: boolean): PierError {
  const s = JSON.stringify(rel);
  if (err.code === 'ENOENT' && err.escaped && tree.context) return new PierError(`${s}: a symlink leading out of ${tree.what} (symlinks are followed only inside it, and ${err.at} is not there)`);
  if (err.code === 'ENOENT') return new PierError(named ? `${s}: no such file or directory` : `${s}: a symlink pointing to nothing (${err.at} is not in ${tree.what})`);
  return new PierError(`${s}: ${err.message}`);
}

/** A source, followed if it is a symlink (inside its tree, as docker does); the caller closes entry.dir. */
function resolveSource(tree: SourceTree, rel: string): Entry {
  try {
    return walkAt(tree.fd, rel, FOLLOW);
  } catch (err) {
    throw err instanceof ResolveError ? sourceError(tree, rel, err, false) : err;
  }
}

/** lstat of a path inside a tree (links before the last component followed inside it), or undefined. */
function lstatIn(tree: number, rel: string): Stats | undefined {
  const e = tryWalkAt(tree, rel, { followLast: false, followInner: true });
  return e && withEntry(e, () => e.st);
}

function globToRegExp(seg: string): RegExp {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let cls = seg.slice(i + 1, end);
      if (cls.startsWith('!') || cls.startsWith('^')) cls = '^' + cls.slice(1);
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < seg.length) re += seg[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

/** The sources a COPY names: paths cleaned to the root, wildcards expanded per path segment, all inside the tree. */
function expandSources(tree: SourceTree, srcs: string[], ignore: DockerIgnore | undefined): Source[] {
  const out: Source[] = [];
  for (const s of srcs) {
    const cleaned = posix.normalize(`/${s}`).slice(1).replace(/\/+$/, '');
    if (posix.normalize(s).startsWith('../') || posix.normalize(s) === '..') {
      throw new PierError(`${JSON.stringify(s)} is outside the build context`);
    }
    if (!/[*?[]/.test(cleaned)) {
      if (cleaned !== '') {
        let e: Entry;
        try {
          e = walkAt(tree.fd, cleaned, { followLast: false, followInner: true });
        } catch (err) {
          throw err instanceof ResolveError ? sourceError(tree, s, err, true) : err;
        }
        const isDir = withEntry(e, () => e.st.isDirectory());
        if (ignore && ignore.excluded(cleaned) && !(isDir && ignore.mayIncludeUnder(cleaned))) {
          throw new PierError(`${JSON.stringify(s)}: excluded by .dockerignore`);
        }
      }
      out.push({ rel: cleaned });
      continue;
    }
    let cands = [''];
    let escape: ResolveError | undefined;
    for (const seg of cleaned.split('/')) {
      const next: string[] = [];
      const re = /[*?[]/.test(seg) ? globToRegExp(seg) : undefined;
      for (const c of cands) {
        const path = c ? `${c}/${seg}` : seg;
        if (!re) {
          try {
            closeSync(walkAt(tree.fd, path, { followLast: false, followInner: true }).dir);
            next.push(path);
          } catch (err) {
            if (!(err instanceof ResolveError)) throw err;
            if (err.escaped) escape ??= err;
          }
          continue;
        }
        let names: string[] = [];
        try {
          const d = walkAt(tree.fd, c, FOLLOW);
          names = withEntry(d, () => (d.st.isDirectory() ? withFd(openDirAt(d.dir, d.name), namesOf) : []));
        } catch (err) {
          if (!(err instanceof ResolveError)) throw err;
          if (err.escaped) escape ??= err;
        }
        for (const n of names) if (re.test(n)) next.push(c ? `${c}/${n}` : n);
      }
      cands = next;
    }
    cands = cands.filter((c) => !ignore || !ignore.excluded(c));
    if (cands.length === 0) throw escape ? sourceError(tree, s, escape, true) : new PierError(`${JSON.stringify(s)}: no source files match`);
    for (const c of cands) out.push({ rel: c });
  }
  return out;
}

/** A digest of the selected files: relative names, types, modes, owners, link targets and contents. */
function digestSources(tree: SourceTree, sources: Source[], ignore: DockerIgnore | undefined): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  const walk = (dir: number, name: string, st: Stats, rel: string) => {
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
    if (st.isSymbolicLink()) h.update(`l${readlinkAt(dir, name)}\0`);
    else if (st.isFile()) {
      const f = openFileAt(dir, name);
      try {
        h.update(`f${f.st.size}\0`);
        for (;;) {
          const n = readSync(f.fd, buf, 0, buf.length, null);
          if (n === 0) break;
          h.update(buf.subarray(0, n));
        }
      } finally { closeSync(f.fd); }
    } else if (st.isDirectory()) {
      h.update('d\0');
      withFd(openDirAt(dir, name), (d) => {
        for (const n of namesOf(d)) {
          const child = rel ? `${rel}/${n}` : n;
          const cst = lstatAt(d, n);
          if (!cst) continue;
          if (ignore && ignore.excluded(child) && !(cst.isDirectory() && ignore.mayIncludeUnder(child))) continue;
          walk(d, n, cst, child);
        }
      });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) h.update(`c${st.rdev}\0`);
  };
  for (const s of sources) {
    h.update(`src\0${s.rel}\0`);
    const e = resolveSource(tree, s.rel);
    withEntry(e, () => walk(e.dir, e.name, e.st, s.rel));
  }
  return `sha256:${h.digest('hex')}`;
}

/** Is `path` a directory in the image (links followed inside it, as the container would)? */
function isDirIn(image: number, path: string): boolean {
  const e = tryWalkAt(image, path, FOLLOW);
  return e !== undefined && withEntry(e, () => e.st.isDirectory());
}

function ownerOf(rootfs: string, chown: string): { uid: number; gid: number } {
  const [u, g] = chown.split(':', 2) as [string, string | undefined];
  const r = resolveUser(rootfs, g === undefined && /^\d+$/.test(u) ? `${u}:${u}` : chown);
  // A bare UID means UID:UID, as docker has it; a name takes its /etc/passwd group.
  return { uid: r.uid, gid: r.gid };
}

/** Remove whatever is at `name` in a directory of the COPY tree (ours: nothing else writes there). */
function removeAt(dir: number, name: string): void {
  rmSync(at(dir, name), { recursive: true, force: true });
}

/**
 * Builds the COPY tree: files from the sources, parents with the image's metadata. Sources are read
 * and the tree is written through directory fds only; an entry an earlier source put in the tree is
 * replaced, never followed (a link `sub -> /etc` from one source and a file `sub/x` from the next
 * make a directory `sub` with `x` in it, not a host file).
 */
class TreeCopier {
  readonly tree: number;
  readonly image: number;
  readonly owner?: { uid: number; gid: number };
  readonly chmod?: number;
  readonly ignore?: DockerIgnore;

  constructor(tree: number, image: number, owner: { uid: number; gid: number } | undefined, chmod: number | undefined, ignore: DockerIgnore | undefined) {
    this.tree = tree;
    this.image = image;
    this.owner = owner;
    this.chmod = chmod;
    this.ignore = ignore;
  }

  /** The image's directory at exactly this path (no symlink on the way), for its metadata. */
  private imageDir(parts: string[]): Stats | undefined {
    const e = tryWalkAt(this.image, parts.join('/'), NO_FOLLOW);
    return e && withEntry(e, () => (e.st.isDirectory() ? e.st : undefined));
  }

  /** Make `dir` (absolute in the image) and its parents; existing image dirs keep their metadata. Returns its fd. */
  ensureDir(dir: string, isDest: boolean): number {
    const parts = dir.split('/').filter(Boolean);
    let cur = openDirAt(this.tree, '.');
    try {
      for (let i = 0; i < parts.length; i++) {
        const name = parts[i];
        const have = lstatAt(cur, name);
        const made = !have?.isDirectory();
        if (made) {
          if (have) removeAt(cur, name);
          mkdirSync(at(cur, name), 0o700);
        }
        const next = openDirAt(cur, name);
        closeSync(cur);
        cur = next;
        if (!made) continue;
        const st = this.imageDir(parts.slice(0, i + 1));
        if (st) {
          fchownSync(cur, st.uid, st.gid);
          fchmodSync(cur, st.mode & 0o7777);
          futimesSync(cur, st.atime, st.mtime);
        } else {
          const o = isDest && i === parts.length - 1 && this.owner ? this.owner : ROOT_OWNER;
          fchownSync(cur, o.uid, o.gid);
          fchmodSync(cur, 0o755);
        }
      }
      return cur;
    } catch (err) {
      closeSync(cur);
      throw err;
    }
  }

  /** Owner, mode and times of a copied file or dir, on its fd (chown before chmod: chown drops setuid). */
  private finish(fd: number, src: Stats): void {
    const o = this.owner ?? src;
    fchownSync(fd, o.uid, o.gid);
    fchmodSync(fd, this.chmod ?? src.mode & 0o7777);
    futimesSync(fd, src.atime, src.mtime);
  }

  /**
   * Copy one entry (a file, link or dir with its subtree) `sname` of directory `sdir` to `dname` in
   * the tree directory `ddir`. `rel` is its path in the source tree (.dockerignore, messages).
   */
  copyEntry(sdir: number, sname: string, st: Stats, ddir: number, dname: string, rel: string, fresh = false): void {
    // In a directory this copy made itself there is nothing to look for.
    const have = fresh ? undefined : lstatAt(ddir, dname);
    if (st.isDirectory()) {
      if (have && !have.isDirectory()) removeAt(ddir, dname);
      const made = !have?.isDirectory();
      if (made) mkdirSync(at(ddir, dname), 0o700);
      withFd(openDirAt(sdir, sname), (s) => withFd(openDirAt(ddir, dname), (d) => {
        this.copyChildren(s, d, rel, made);
        this.finish(d, fstatSync(s));
      }));
      return;
    }
    if (st.isSymbolicLink()) {
      if (have) removeAt(ddir, dname);
      const p = at(ddir, dname);
      symlinkSync(readlinkAt(sdir, sname), p);
      const o = this.owner ?? st;
      lchownSync(p, o.uid, o.gid);
      lutimesSync(p, st.atime, st.mtime);
    } else if (st.isFile()) {
      const f = openFileAt(sdir, sname);
      try {
        if (have) removeAt(ddir, dname);
        // O_EXCL|O_NOFOLLOW: a new file of ours; the data goes fd to fd (copy_file_range or a reflink).
        const d = openSync(at(ddir, dname), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        try {
          copyData(f.fd, d, f.st.size);
          this.finish(d, f.st);
        } finally { closeSync(d); }
      } finally { closeSync(f.fd); }
    } else {
      throw new PierError(`${JSON.stringify(rel)}: cannot copy a special file`);
    }
  }

  /** The children of the source directory `src` (at `rel` in the source tree) into `target` (absolute in the image). */
  copyDirContents(src: Entry, rel: string, target: string): void {
    withFd(this.ensureDir(target, true), (d) => withFd(openDirAt(src.dir, src.name), (s) => {
      this.copyChildren(s, d, rel);
      // The destination dir takes the source dir's mode only when it is new to the image.
      if (!isDirIn(this.image, target)) this.finish(d, fstatSync(s));
    }));
  }

  private copyChildren(s: number, d: number, rel: string, fresh = false): void {
    for (const n of namesOf(s)) {
      const childRel = rel ? `${rel}/${n}` : n;
      const st = lstatAt(s, n);
      if (!st) continue;   // gone since readdir
      if (this.ignore?.excluded(childRel) && !(st.isDirectory() && this.ignore.mayIncludeUnder(childRel))) continue;
      this.copyEntry(s, n, st, d, n, childRel, fresh);
    }
  }

  /**
   * Move what an archive was unpacked to (the staging dir `s`, ours) into `target`: entries are
   * renamed in whole, with the metadata tar gave them; a directory the tree already has is merged
   * into and keeps its own metadata (tar's --no-overwrite-dir).
   */
  merge(s: number, target: string): void {
    withFd(this.ensureDir(target, true), (d) => this.mergeDir(s, d));
  }

  private mergeDir(s: number, d: number): void {
    for (const n of namesOf(s)) {
      const st = lstatAt(s, n);
      const have = lstatAt(d, n);
      if (st?.isDirectory() && have?.isDirectory()) {
        withFd(openDirAt(s, n), (cs) => withFd(openDirAt(d, n), (cd) => this.mergeDir(cs, cd)));
        continue;
      }
      if (have) removeAt(d, n);
      renameSync(at(s, n), at(d, n));
    }
  }
}

const copyBuf = Buffer.allocUnsafe(1 << 20);

/**
 * File data fd to fd. Small files (most of a context) through one buffer: two syscalls where
 * copyFileSync would reopen both ends; big ones with copyFileSync on the fds' own /proc paths
 * (copy_file_range, or a reflink where the filesystem has them).
 */
function copyData(src: number, dst: number, size: number): void {
  if (size > copyBuf.length) {
    copyFileSync(fdPath(src), fdPath(dst));
    return;
  }
  for (;;) {
    const n = readSync(src, copyBuf, 0, copyBuf.length, null);
    if (n === 0) return;
    for (let off = 0; off < n;) off += writeSync(dst, copyBuf, off, n - off);
  }
}

const TAR_MAGICS: Buffer[] = [Buffer.from([0x1f, 0x8b]), Buffer.from('BZh'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.from([0x28, 0xb5, 0x2f, 0xfd])];

/** tar reads the archive as its fd 3 (the file this process opened without following a link). */
const TAR_INPUT = '/proc/self/fd/3';

/** ADD extracts local tar archives (plain, gzip, bzip2, xz, zstd): is this one? */
function isTarArchive(e: Entry): boolean {
  const f = openFileAt(e.dir, e.name);
  try {
    const head = Buffer.alloc(512);
    const n = readSync(f.fd, head, 0, 512, 0);
    if (n >= 262 && head.subarray(257, 262).toString() === 'ustar') return true;
    if (!TAR_MAGICS.some((m) => head.subarray(0, m.length).equals(m))) return false;
    try {
      execFileSync('tar', ['-tf', TAR_INPUT], { stdio: ['ignore', 'ignore', 'ignore', f.fd] });
      return true;
    } catch {
      return false; // compressed, but not a tar: ADD copies it as a file
    }
  } finally {
    closeSync(f.fd);
  }
}

/** Unpack an archive into `destDir`, a new empty dir of ours (what is already in the tree is never in tar's way). */
function extractTar(e: Entry, destDir: string): void {
  const f = openFileAt(e.dir, e.name);
  try {
    execFileSync('tar', ['-xf', TAR_INPUT, '-C', destDir, '--numeric-owner', '--same-owner', '-p'], { stdio: ['ignore', 'ignore', 'pipe', f.fd] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new PierError(`cannot extract ${e.name}: ${stderr || messageOf(err)}`);
  } finally {
    closeSync(f.fd);
  }
}

/** Build an image from a Containerfile; see BuildOptions. */
export function build(svc: ImageService, opts: BuildOptions): Promise<BuildResult> {
  return new Builder(svc, opts).build();
}
