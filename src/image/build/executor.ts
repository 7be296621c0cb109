/**
 * The build executor: runs a parsed Containerfile stage by stage. Every step has a cache key chained
 * from its parent's; a hit reuses the stored layer and history entry, a miss runs the step (RUN in a
 * container through the runtime library, COPY/ADD packed straight from the sources) and records it.
 * Metadata steps only change the config and add an `empty_layer` history entry.
 */
import { chmodSync, chownSync, copyFileSync, existsSync, lchownSync, lstatSync, mkdirSync, openSync, readSync, closeSync,
  readdirSync, readFileSync, readlinkSync, rmSync, rmdirSync, symlinkSync, utimesSync, lutimesSync, type Stats } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { basename, join, posix, resolve } from 'node:path';
import { PierError, messageOf } from '../../common/errors.ts';
import { fsx } from '../../common/fsx.ts';
import { Runtime, type Spec } from '../../runtime/index.ts';
import type { ImageService } from '../index.ts';
import { formatReference, parseReference, platformOf, type ContainerConfig, type Descriptor, type HistoryEntry, type Platform } from '../oci/index.ts';
import { reachable, type Lease } from '../store/index.ts';
import { diffUpper, packDirectory, type Compression, type LayerBlob } from '../layer/index.ts';
import { Snapshotter } from '../snapshot/index.ts';
import { writeImage, hostPlatform, DEFAULT_PATH } from '../transfer/index.ts';
import { imageSpec, writeBundle, resolveUser, resolveInRoot } from '../bundle.ts';
import { ContainerfileError, fail, parseContainerfile, type Containerfile, type Instruction, type Stage } from './parser.ts';
import { keyValues, processWord, processWords } from './words.ts';
import { DockerIgnore } from './dockerignore.ts';
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

  constructor(svc: ImageService, opts: BuildOptions) {
    this.svc = svc;
    this.opts = opts;
    this.imagesDir = svc.content.root;
    this.snap = new Snapshotter(this.imagesDir);
    this.cache = new BuildCache(this.imagesDir);
    this.runtime = new Runtime({ root: join(svc.root, 'build-runtime') });
    this.tmpDir = join(this.imagesDir, 'build-tmp');
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
      for (const c of this.cleanups.reverse()) {
        try { await c(); } catch (err) { this.opts.warn?.(`cleanup: ${messageOf(err)}`); }
      }
      this.lease.release();
    }
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
    const m = await this.mount(st, false);
    const id = `pier-build-${process.pid}-${randomId()}`;
    const bundle = join(this.tmpDir, `bundle-${id}`);
    try {
      const before = new Map<string, Stats>();
      for (const p of RUN_STUBS) { try { before.set(p, lstatSync(join(m.rootfs, p))); } catch { /* absent */ } }
      const cwd = st.config.WorkingDir || '/';
      // The runtime needs the working directory; docker creates it too, and it belongs in this layer.
      if (!exists(join(m.rootfs, cwd))) mkdirSync(join(m.rootfs, cwd), { recursive: true, mode: 0o755 });
      let spec: Spec;
      try {
        spec = imageSpec({ architecture: st.platform.architecture, os: st.platform.os, config: st.config, rootfs: { type: 'layers', diff_ids: [] } },
          { rootfs: m.rootfs, args, env: argEnv, cwd, hostname: 'pier-build' });
      } catch (err) {
        this.err(ins, messageOf(err));
      }
      spec.process!.terminal = false;
      // Host network, so package installs reach the network; the host's resolver config, read-only.
      spec.linux!.namespaces = spec.linux!.namespaces!.filter((n) => n.type !== 'network');
      // sysfs can only be mounted from a network namespace of our own: bind the host's, read-only.
      spec.mounts = spec.mounts!.map((mt) => (mt.destination === '/sys' ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : mt))
        .filter((mt) => mt.destination !== '/sys/fs/cgroup');
      if (existsSync('/etc/resolv.conf')) spec.mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: '/etc/resolv.conf', options: ['rbind', 'ro'] });
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
      for (const p of RUN_STUBS) dropStub(join(upper, p), before.get(p));
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
    const fromFlag = ins.flags.from !== undefined ? this.word(st, ins, ins.flags.from) : undefined;
    if (fromFlag !== undefined) {
      const dep = this.stageByRef(fromFlag, st.index);
      if (dep) {
        const d = this.states.get(dep.index);
        if (!d) this.err(ins, `--from=${fromFlag}: stage was not built`);
        fromKey = d.key;
        fromState = d;
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
    try {
      if (fromState) {
        const m = await this.mount(fromState, true);
        srcRoot = m.rootfs;
        release = m.release;
      }
      const ignore = fromState ? undefined : this.ignore;
      const sources = this.at(ins, () => expandSources(srcRoot, srcs, ignore));
      if (sources.length === 0) this.err(ins, 'no source files were specified');
      const multi = sources.length > 1 || srcs.some((s) => /[*?[]/.test(s));
      // Cache key: the selected files' names, types, modes, owners and contents (or the source stage's key).
      const contentKey = fromKey ?? digestSources(srcRoot, sources, ignore);
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
      try {
        const owner = chown !== undefined ? this.at(ins, () => ownerOf(cur.rootfs, chown)) : fromState ? undefined : { uid: 0, gid: 0 };
        const destAbs = posix.resolve(st.config.WorkingDir || '/', dest);
        const destIsDir = dest.endsWith('/') || dest.endsWith('/.') || multi || isDirIn(cur.rootfs, destAbs);
        if (multi && !dest.endsWith('/') && !isDirIn(cur.rootfs, destAbs)) this.err(ins, `when copying several sources the destination must be a directory ending in "/": ${dest}`);
        const copier = new TreeCopier(tree, cur.rootfs, owner, chmod, ignore);
        for (const s of sources) {
          // A source named through a symlink is copied as what it points to (inside its root).
          const abs = join(srcRoot, resolveInRoot(srcRoot, s.rel));
          if (!exists(abs)) this.err(ins, `${JSON.stringify(s.rel)}: a symlink pointing to nothing`);
          const stt = lstatSync(abs);
          if (stt.isDirectory()) {
            copier.ensureDir(destAbs, true);
            copier.copyDirContents(abs, s.rel, destAbs);
          } else if (kind === 'ADD' && !fromState && isTarArchive(abs)) {
            copier.ensureDir(destAbs, true);
            this.at(ins, () => extractTar(abs, join(tree, destAbs)));
          } else {
            const target = destIsDir ? posix.join(destAbs, posix.basename(s.rel)) : destAbs;
            copier.ensureDir(posix.dirname(target), false);
            copier.copyEntry(abs, target);
          }
        }
        await cur.release();
        const layer = await this.storeLayer((d) => packDirectory(tree, d, this.packOpts()));
        const history: HistoryEntry = { created: this.now(), created_by: `${kind} ${shown}`, comment: 'pier build' };
        this.cache.put(key, { layer, history });
        st.history.push(history);
        this.finishStep(st, key, false, layer);
      } finally {
        rmSync(tree, { recursive: true, force: true });
        await cur.release();
      }
    } finally {
      await release?.();
    }
  }
}

function exists(p: string): boolean {
  try { lstatSync(p); return true; } catch { return false; }
}

/**
 * Remove from the upper dir what only the runtime made: an empty file or dir the image did not have,
 * or a dir the image had that was copied up just to hold such stubs (empty, owner and mode unchanged).
 */
function dropStub(p: string, before: Stats | undefined): void {
  let st: Stats;
  try { st = lstatSync(p); } catch { return; }
  if (!before) {
    if (st.isFile() && st.size === 0) rmSync(p, { force: true });
    else if (st.isDirectory()) {
      try { rmdirSync(p); } catch { /* not empty: the RUN put something there, keep it */ }
    }
    return;
  }
  if (!st.isDirectory() || !before.isDirectory()) return;
  if (st.mode !== before.mode || st.uid !== before.uid || st.gid !== before.gid) return;
  for (const x of ['trusted.overlay.opaque', 'user.overlay.opaque']) if (fsx().lgetxattr(p, x) !== null) return;
  try { rmdirSync(p); } catch { /* not empty: keep */ }
}

interface Source {
  /** path relative to the source root, without a leading "/" */
  rel: string;
}

/** lstat a path under root, following a symlink at its end (within root). */
function statInRoot(root: string, rel: string): Stats {
  const abs = join(root, rel);
  const st = lstatSync(abs);
  if (!st.isSymbolicLink()) return st;
  const target = resolveInRoot(root, rel);
  return lstatSync(join(root, target));
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

/** The sources a COPY names: paths cleaned to the root, wildcards expanded per path segment. */
function expandSources(root: string, srcs: string[], ignore: DockerIgnore | undefined): Source[] {
  const out: Source[] = [];
  for (const s of srcs) {
    const cleaned = posix.normalize(`/${s}`).slice(1).replace(/\/+$/, '');
    if (posix.normalize(s).startsWith('../') || posix.normalize(s) === '..') {
      throw new PierError(`${JSON.stringify(s)} is outside the build context`);
    }
    if (!/[*?[]/.test(cleaned)) {
      if (cleaned !== '' && !exists(join(root, cleaned))) throw new PierError(`${JSON.stringify(s)}: no such file or directory`);
      if (ignore && cleaned !== '' && ignore.excluded(cleaned) && !(lstatSync(join(root, cleaned)).isDirectory() && ignore.mayIncludeUnder(cleaned))) {
        throw new PierError(`${JSON.stringify(s)}: excluded by .dockerignore`);
      }
      out.push({ rel: cleaned });
      continue;
    }
    let cands = [''];
    for (const seg of cleaned.split('/')) {
      const next: string[] = [];
      const re = /[*?[]/.test(seg) ? globToRegExp(seg) : undefined;
      for (const c of cands) {
        if (!re) { if (exists(join(root, c, seg))) next.push(c ? `${c}/${seg}` : seg); continue; }
        let names: string[] = [];
        try { names = readdirSync(join(root, c)).sort(); } catch { /* not a dir */ }
        for (const n of names) if (re.test(n)) next.push(c ? `${c}/${n}` : n);
      }
      cands = next;
    }
    cands = cands.filter((c) => !ignore || !ignore.excluded(c));
    if (cands.length === 0) throw new PierError(`${JSON.stringify(s)}: no source files match`);
    for (const c of cands) out.push({ rel: c });
  }
  return out;
}

/** A digest of the selected files: relative names, types, modes, owners, link targets and contents. */
function digestSources(root: string, sources: Source[], ignore: DockerIgnore | undefined): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  const walk = (rel: string, follow: boolean) => {
    const abs = join(root, rel);
    const st = follow ? statInRoot(root, rel) : lstatSync(abs);
    const real = follow && lstatSync(abs).isSymbolicLink() ? join(root, resolveInRoot(root, rel)) : abs;
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
    if (st.isSymbolicLink()) h.update(`l${readlinkSync(abs)}\0`);
    else if (st.isFile()) {
      h.update(`f${st.size}\0`);
      const fd = openSync(real, 'r');
      try {
        for (;;) {
          const n = readSync(fd, buf, 0, buf.length, null);
          if (n === 0) break;
          h.update(buf.subarray(0, n));
        }
      } finally { closeSync(fd); }
    } else if (st.isDirectory()) {
      h.update('d\0');
      for (const n of readdirSync(real).sort()) {
        const child = rel ? `${rel}/${n}` : n;
        if (ignore && ignore.excluded(child) && !(lstatSync(join(root, child)).isDirectory() && ignore.mayIncludeUnder(child))) continue;
        walk(child, false);
      }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) h.update(`c${st.rdev}\0`);
  };
  for (const s of sources) { h.update(`src\0${s.rel}\0`); walk(s.rel, true); }
  return `sha256:${h.digest('hex')}`;
}

function isDirIn(rootfs: string, path: string): boolean {
  try {
    const rel = resolveInRoot(rootfs, path);
    return lstatSync(join(rootfs, rel)).isDirectory();
  } catch {
    return false;
  }
}

function ownerOf(rootfs: string, chown: string): { uid: number; gid: number } {
  const [u, g] = chown.split(':', 2) as [string, string | undefined];
  const r = resolveUser(rootfs, g === undefined && /^\d+$/.test(u) ? `${u}:${u}` : chown);
  // A bare UID means UID:UID, as docker has it; a name takes its /etc/passwd group.
  return { uid: r.uid, gid: r.gid };
}

/** Builds the COPY tree under `tree`: files from the sources, parents with the image's metadata. */
class TreeCopier {
  readonly tree: string;
  readonly image: string;
  readonly owner?: { uid: number; gid: number };
  readonly chmod?: number;
  readonly ignore?: DockerIgnore;

  constructor(tree: string, image: string, owner: { uid: number; gid: number } | undefined, chmod: number | undefined, ignore: DockerIgnore | undefined) {
    this.tree = tree;
    this.image = image;
    this.owner = owner;
    this.chmod = chmod;
    this.ignore = ignore;
  }

  /** Make `dir` (absolute in the image) and its parents; existing image dirs keep their metadata. */
  ensureDir(dir: string, isDest: boolean): void {
    const parts = dir.split('/').filter(Boolean);
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      cur += `/${parts[i]}`;
      const p = join(this.tree, cur);
      if (exists(p)) continue;
      mkdirSync(p);
      let st: Stats | undefined;
      try { st = lstatSync(join(this.image, cur)); } catch { /* new dir */ }
      if (st?.isDirectory()) {
        chmodSync(p, st.mode & 0o7777);
        chownSync(p, st.uid, st.gid);
        utimesSync(p, st.atime, st.mtime);
      } else {
        chmodSync(p, 0o755);
        const o = isDest && i === parts.length - 1 && this.owner ? this.owner : { uid: 0, gid: 0 };
        chownSync(p, o.uid, o.gid);
      }
    }
  }

  private finish(src: Stats, dst: string, isLink: boolean): void {
    const o = this.owner ?? { uid: src.uid, gid: src.gid };
    if (isLink) {
      lchownSync(dst, o.uid, o.gid);
      lutimesSync(dst, src.atime, src.mtime);
      return;
    }
    chownSync(dst, o.uid, o.gid);
    chmodSync(dst, this.chmod ?? src.mode & 0o7777);
    utimesSync(dst, src.atime, src.mtime);
  }

  /** Copy one entry (a file, link or dir with its subtree) to `target` (absolute in the image). */
  copyEntry(abs: string, target: string): void {
    const dst = join(this.tree, target);
    const st = lstatSync(abs);
    if (exists(dst) && !st.isDirectory()) rmSync(dst, { recursive: true, force: true });
    if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(abs), dst);
      this.finish(st, dst, true);
    } else if (st.isFile()) {
      copyFileSync(abs, dst);
      this.finish(st, dst, false);
    } else if (st.isDirectory()) {
      if (!exists(dst)) mkdirSync(dst);
      this.copyChildren(abs, target);
      this.finish(st, dst, false);
    } else {
      throw new PierError(`${abs}: cannot copy a special file`);
    }
  }

  /** The children of directory `abs` (relative `rel` in the source root, for .dockerignore) into `target`. */
  copyDirContents(abs: string, rel: string, target: string): void {
    this.copyChildren(abs, target, rel);
    const st = lstatSync(abs);
    const dst = join(this.tree, target);
    // The destination dir takes the source dir's mode only when it is new to the image.
    if (!isDirIn(this.image, target)) this.finish(st, dst, false);
  }

  private copyChildren(abs: string, target: string, rel?: string): void {
    for (const n of readdirSync(abs).sort()) {
      const childRel = rel === undefined ? undefined : rel ? `${rel}/${n}` : n;
      if (childRel !== undefined && this.ignore?.excluded(childRel)) {
        if (!(lstatSync(join(abs, n)).isDirectory() && this.ignore.mayIncludeUnder(childRel))) continue;
      }
      const childTarget = posix.join(target, n);
      const st = lstatSync(join(abs, n));
      if (st.isDirectory() && childRel !== undefined) {
        const dst = join(this.tree, childTarget);
        if (!exists(dst)) mkdirSync(dst);
        this.copyChildren(join(abs, n), childTarget, childRel);
        this.finish(st, dst, false);
      } else {
        this.copyEntry(join(abs, n), childTarget);
      }
    }
  }
}

const TAR_MAGICS: Buffer[] = [Buffer.from([0x1f, 0x8b]), Buffer.from('BZh'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.from([0x28, 0xb5, 0x2f, 0xfd])];

/** ADD extracts local tar archives (plain, gzip, bzip2, xz, zstd): is this one? */
function isTarArchive(path: string): boolean {
  const head = Buffer.alloc(512);
  const fd = openSync(path, 'r');
  let n: number;
  try { n = readSync(fd, head, 0, 512, 0); } finally { closeSync(fd); }
  if (n >= 262 && head.subarray(257, 262).toString() === 'ustar') return true;
  if (!TAR_MAGICS.some((m) => head.subarray(0, m.length).equals(m))) return false;
  try {
    execFileSync('tar', ['-tf', path], { stdio: ['ignore', 'ignore', 'ignore'] });
    return true;
  } catch {
    return false; // compressed, but not a tar: ADD copies it as a file
  }
}

function extractTar(path: string, destDir: string): void {
  try {
    execFileSync('tar', ['-xf', path, '-C', destDir, '--numeric-owner', '--same-owner', '-p', '--no-overwrite-dir'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new PierError(`cannot extract ${basename(path)}: ${stderr || messageOf(err)}`);
  }
}

/** Build an image from a Containerfile; see BuildOptions. */
export function build(svc: ImageService, opts: BuildOptions): Promise<BuildResult> {
  return new Builder(svc, opts).build();
}
