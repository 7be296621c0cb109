/**
 * The shim process (dist/pier-shim.cjs). A `Shim` monitors one container: it runs it through a
 * Runner, copies its output into the json-file log and to attached clients, serves the container's
 * socket, and when the container exits deletes it and writes the exit file.
 *
 *   pier-shim --config '<ShimConfig JSON>'   one container; started by spawnShim, reports on fd 3
 *   pier-shim --host <socket>                a shim host: monitors every container pierd hands it
 *                                            with {"op":"start","config":…} on <socket>
 *
 * A host saves a Node start-up (~40 ms of CPU, ~30 MB) per container. It outlives pierd like a
 * single shim does: it stops taking new containers when pierd goes (fd 3 reaches EOF) and exits
 * once its last container has.
 *
 * It never touches process.stdout/stderr (they are /dev/null once detached); diagnostics go to
 * cfg.shimLog when set.
 */
import { appendFileSync, closeSync, fstatSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { dirname } from 'node:path';
import { writeFileAtomic, mkdirp } from '../../common/atomic.ts';
import { messageOf, PierError } from '../../common/errors.ts';
import { Logger } from '../../common/log.ts';
import { parseSignal } from '../../runtime/index.ts';
import { FRAME, FrameReader, OPS_V2, PROTOCOL_VERSION, checkExecSpec, encodeFrame, jsonFrame, type Request } from './protocol.ts';
import { ExecSession, execProcess, setTerminalSize } from './exec.ts';
import { JsonLog, formatTime, nowNs, type LogStream } from './jsonlog.ts';
import { closeQuietly, fifoDir, inputFifo, outputFifo, removeDir, type FifoEnds } from '../../common/fifo.ts';
import { makeRunner, type Runner } from './runner.ts';
import { checkConfig } from './config.ts';
import type { ExitStatus, ShimConfig, StartResult } from './types.ts';

type State = 'idle' | 'starting' | 'created' | 'running' | 'exiting' | 'exited';

/** A client connection. */
interface Conn {
  sock: Socket;
  op?: Request['op'];
  streams?: { stdout: boolean; stderr: boolean };
  /** waiting for this client to drain before reading more container output */
  blocking?: boolean;
  /** the process this connection exec'd (op exec) */
  exec?: ExecSession;
}

/** Pause reading container output while an attached client has this much unsent. */
const HIGH_WATER = 1 << 20;
/** After exit: how long to wait for the output pipes' EOF before and after the delete. */
const EOF_WAIT_MS = 500;
/** After the exit frames went out: how long a client may take to hang up. */
const LINGER_MS = 5_000;

class Shim {
  state: State = 'idle';
  /** called once this container's monitoring is over (the process may host others) */
  private readonly onDone: (code: number) => void;
  cfg: ShimConfig | undefined;
  private servers: Array<{ server: Server; path: string; ino?: number }> = [];
  private conns = new Set<Conn>();
  private runner: Runner | undefined;
  private log: JsonLog | undefined;
  /** log entries held until the start succeeded: a failed start leaves no log */
  private preStart: Array<[LogStream, Buffer, string]> | undefined = [];
  private outputs: Partial<Record<LogStream, Socket>> = {};
  private outputsOpen = 0;
  private outputsClosed: Promise<void> = Promise.resolve();
  private stdin: Socket | undefined;
  private stdinOwner: Conn | undefined;
  private blockedClients = 0;
  private initPid = 0;
  private startedAt = '';
  private exit: ExitStatus | undefined;
  private fifoTmp: string | undefined;
  private reportFd: number | undefined;
  private quitting = false;
  /** the exit watcher acts only once the container's end is news: started, or created for a deferred start */
  private watchExit = false;
  private starting: Promise<void> | undefined;
  private startError: string | undefined;

  constructor(onDone: (code: number) => void) {
    this.onDone = onDone;
  }

  diag(msg: string): void {
    const file = this.cfg?.shimLog;
    if (!file) return;
    try { appendFileSync(file, `${new Date().toISOString()} shim ${process.pid}: ${msg}\n`); } catch { /* nowhere to say it */ }
  }

  // ---- sockets -------------------------------------------------------------------------------

  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      try { mkdirp(dirname(path), 0o700); } catch { /* listen reports it */ }
      try { unlinkSync(path); } catch { /* no stale socket */ }
      const server = createServer({ allowHalfOpen: false }, (sock) => this.accept(sock));
      server.once('error', (err) => reject(new PierError(`cannot listen on shim socket ${path}: ${messageOf(err)}`)));
      server.listen(path, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.diag(`socket ${path}: ${messageOf(err)}`));
        let ino: number | undefined;
        try { ino = statSync(path).ino; } catch { /* raced away */ }
        this.servers.push({ server, path, ino });
        resolve();
      });
    });
  }

  private closeServer(path: string): void {
    const i = this.servers.findIndex((s) => s.path === path);
    if (i < 0) return;
    const [s] = this.servers.splice(i, 1);
    s.server.close();
    // only our own socket file: a newer shim may already listen on the same path
    try { if (s.ino === undefined || statSync(s.path).ino === s.ino) unlinkSync(s.path); } catch { /* dir vanished */ }
  }

  private accept(sock: Socket): void {
    const conn: Conn = { sock };
    this.conns.add(conn);
    const reader = new FrameReader({ line: true });
    sock.on('data', (chunk: Buffer) => {
      let items;
      try {
        items = reader.push(chunk);
      } catch (err) {
        this.replyAndEnd(conn, { error: messageOf(err) });
        return;
      }
      for (const it of items) {
        if ('line' in it) this.request(conn, it.line);
        else this.frame(conn, it.type, it.payload);
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.drop(conn));
  }

  private drop(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    if (conn.blocking) { conn.blocking = false; this.unblock(); }
    if (this.stdinOwner === conn) this.stdinOwner = undefined; // a later attacher may take stdin
    conn.exec?.clientGone();
    if (this.state === 'exited' && this.conns.size === 0) this.quit(0);
  }

  private send(conn: Conn, buf: Buffer): void {
    if (conn.sock.destroyed || !conn.sock.writable) return;
    conn.sock.write(buf);
  }

  private replyAndEnd(conn: Conn, value: unknown): void {
    this.send(conn, jsonFrame(FRAME.REPLY, value));
    conn.sock.end();
  }

  private request(conn: Conn, line: string): void {
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
      if (!req || typeof req !== 'object' || typeof req.op !== 'string') throw new Error('no op');
    } catch {
      this.replyAndEnd(conn, { error: 'bad request: expected one JSON line {"op":…}' });
      return;
    }
    conn.op = req.op;
    switch (req.op) {
      case 'wait':
        if (this.exit) this.sendExit(conn);
        return;
      case 'attach':
        this.attach(conn, req);
        return;
      case 'resize':
        this.resize(Number(req.cols), Number(req.rows)).then(() => this.replyAndEnd(conn, { ok: true }), (err) => this.replyAndEnd(conn, { error: messageOf(err) }));
        return;
      case 'kill':
        try {
          const sig = typeof req.signal === 'number' ? req.signal : parseSignal(req.signal ?? 'SIGTERM');
          if (this.state !== 'running' && this.state !== 'created') throw new PierError('container not running');
          this.stop(sig);
          this.replyAndEnd(conn, { ok: true });
        } catch (err) {
          this.replyAndEnd(conn, { error: messageOf(err) });
        }
        return;
      case 'status':
        this.replyAndEnd(conn, { ok: true, state: this.state, id: this.cfg?.id, shimPid: process.pid, initPid: this.initPid, ...(this.exit ? { exit: this.exit } : {}) });
        return;
      case 'start':
        if (this.state === 'created' && req.config === undefined) void this.startDeferred(conn);
        else this.replyAndEnd(conn, { error: `cannot start: the container is ${this.state}${req.config !== undefined ? ' (a config is only accepted by a shim host)' : ''}` });
        return;
      // ---- protocol v2: the task API ----
      case 'version':
        this.replyAndEnd(conn, { ok: true, version: PROTOCOL_VERSION, ops: OPS_V2 });
        return;
      case 'exec':
        this.exec(conn, req);
        return;
      case 'pause':
      case 'resume':
      case 'stats': {
        const op = req.op;
        if (this.state !== 'running' || !this.runner) { this.replyAndEnd(conn, { error: `cannot ${op}: the container is not running` }); return; }
        const r = this.runner;
        const run = op === 'pause' ? r.pause().then(() => ({})) : op === 'resume' ? r.resume().then(() => ({})) : r.stats().then((stats) => ({ stats }));
        run.then((v) => this.replyAndEnd(conn, { ok: true, ...v }), (err) => this.replyAndEnd(conn, { error: `${op}: ${messageOf(err)}` }));
        return;
      }
      default:
        this.replyAndEnd(conn, { error: `unknown op ${JSON.stringify((req as { op: string }).op)}` });
    }
  }

  /** Start a process in the running container for this connection (exec.ts). */
  private exec(conn: Conn, req: Extract<Request, { op: 'exec' }>): void {
    const bad = checkExecSpec(req.process);
    if (bad) { this.replyAndEnd(conn, { error: bad }); return; }
    if (this.state !== 'running' || !this.runner || !this.cfg) {
      this.replyAndEnd(conn, { error: `cannot exec: the container is ${this.state === 'exiting' || this.state === 'exited' ? 'stopped' : 'not running'}` });
      return;
    }
    let proc;
    try { proc = execProcess(this.cfg.bundle, req.process); } catch (err) { this.replyAndEnd(conn, { error: messageOf(err) }); return; }
    const session = new ExecSession({ runner: this.runner, proc, spec: req.process, client: conn.sock, diag: (m) => this.diag(m) });
    conn.exec = session;
    session.start();
  }

  private attach(conn: Conn, req: Extract<Request, { op: 'attach' }>): void {
    if (this.exit || this.state === 'idle') {
      this.send(conn, jsonFrame(FRAME.REPLY, { ok: true, stdin: false, tty: !!this.cfg?.tty }));
      if (this.exit) this.sendExit(conn);
      else conn.sock.end();
      return;
    }
    conn.streams = { stdout: req.stdout !== false, stderr: req.stderr !== false };
    // stdin goes to one client at a time: the first that asks while it is open
    let stdin = false;
    if (req.stdin && this.stdin && !this.stdinOwner) {
      this.stdinOwner = conn;
      stdin = true;
    }
    this.send(conn, jsonFrame(FRAME.REPLY, { ok: true, stdin, tty: !!this.cfg?.tty }));
  }

  private frame(conn: Conn, type: number, payload: Buffer): void {
    if (conn.exec) { conn.exec.frame(type, payload); return; }
    switch (type) {
      case FRAME.STDIN:
        if (this.stdinOwner === conn && this.stdin && this.stdin.writable && payload.length) {
          if (!this.stdin.write(payload)) {
            // the container is not reading: stop reading this client until it does
            conn.sock.pause();
            this.stdin.once('drain', () => conn.sock.resume());
          }
        }
        return;
      case FRAME.STDIN_EOF:
        if (this.stdinOwner === conn && this.stdin) {
          this.stdin.end();
          this.stdin = undefined;
          this.stdinOwner = undefined;
        }
        return;
      case FRAME.RESIZE:
        try {
          const { cols, rows } = JSON.parse(payload.toString('utf8')) as { cols: number; rows: number };
          this.resize(Number(cols), Number(rows)).catch((err) => this.diag(`resize: ${messageOf(err)}`));
        } catch { /* a bad resize frame is ignored */ }
        return;
      default:
        // unknown client frames are ignored so newer clients can talk to older shims
    }
  }

  private sendExit(conn: Conn): void {
    this.send(conn, jsonFrame(FRAME.EXIT, this.exit));
    conn.sock.end();
  }

  // ---- terminal ------------------------------------------------------------------------------

  /**
   * Window size of the container's terminal. pier-helper owns the pty master and only copies its
   * own stdin's size (a pipe here), so the size is set on the slave instead: stty -F on the init's
   * fd 0, which the kernel turns into SIGWINCH for the foreground process group.
   */
  private resize(cols: number, rows: number): Promise<void> {
    if (!this.cfg?.tty) return Promise.reject(new PierError('the container has no terminal'));
    if (!(this.state === 'running' || this.state === 'created') || this.initPid <= 0) return Promise.reject(new PierError('container not running'));
    return setTerminalSize(this.initPid, cols, rows);
  }

  // ---- container output ----------------------------------------------------------------------

  private readOutput(stream: LogStream, fd: number): void {
    const sock = new Socket({ fd, readable: true, writable: false });
    this.outputs[stream] = sock;
    this.outputsOpen++;
    const type = stream === 'stdout' ? FRAME.STDOUT : FRAME.STDERR;
    sock.on('data', (chunk: Buffer) => {
      const time = formatTime(nowNs());
      if (this.preStart) this.preStart.push([stream, chunk, time]);
      else this.writeLog(stream, chunk, time);
      let frame: Buffer | undefined;
      for (const c of this.conns) {
        if (!c.streams?.[stream]) continue;
        frame ??= encodeFrame(type, chunk);
        this.send(c, frame);
        if (!c.blocking && c.sock.writableLength > HIGH_WATER) {
          // docker semantics: a slow attached client slows the container, it does not lose output
          c.blocking = true;
          this.blockedClients++;
          this.pauseOutputs();
          c.sock.once('drain', () => { if (c.blocking) { c.blocking = false; this.unblock(); } });
        }
      }
    });
    sock.on('error', (err) => this.diag(`${stream}: ${messageOf(err)}`));
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    const before = this.outputsClosed;
    this.outputsClosed = Promise.all([before, closed]).then(() => undefined);
    sock.once('end', () => this.log?.end(stream));
  }

  private pauseOutputs(): void {
    for (const s of Object.values(this.outputs)) s?.pause();
  }

  private unblock(): void {
    if (--this.blockedClients <= 0) {
      this.blockedClients = 0;
      for (const s of Object.values(this.outputs)) s?.resume();
    }
  }

  private writeLog(stream: LogStream, chunk: Buffer, time: string): void {
    const log = this.log;
    if (!log) return;
    const hadError = log.error;
    log.write(stream, chunk, time);
    if (!hadError && log.error) this.diag(`log ${log.path}: ${messageOf(log.error)}`);
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** Prepare everything and create (and unless deferred, start) the container. */
  async run(cfg: ShimConfig): Promise<StartResult> {
    this.cfg = cfg;
    this.state = 'starting';
    try {
      checkConfig(cfg);
      // a stale exit file from an earlier run would end `logs -f` and mislead a reconnecting pierd
      try { unlinkSync(cfg.exitFile); } catch { /* none */ }
      if (!this.servers.some((s) => s.path === cfg.socket)) await this.listen(cfg.socket);
      try {
        this.log = new JsonLog(cfg.log);
      } catch (err) {
        throw new PierError(`cannot open log file ${cfg.log.path}: ${messageOf(err)}`);
      }
      this.runner = makeRunner(cfg, new Logger({ file: cfg.shimLog, format: 'json' }));
      this.fifoTmp = fifoDir();
      const fifos: FifoEnds[] = [];
      let stdin: FifoEnds | undefined;
      try {
        fifos.push(outputFifo(this.fifoTmp, 'stdout'), outputFifo(this.fifoTmp, 'stderr'));
        if (cfg.stdin) stdin = inputFifo(this.fifoTmp, 'stdin');
      } catch (err) {
        for (const f of [...fifos, stdin]) { closeQuietly(f?.ours); closeQuietly(f?.theirs); }
        throw new PierError(`cannot make the container's stdio pipes: ${messageOf(err)}`);
      } finally {
        removeDir(this.fifoTmp);
        this.fifoTmp = undefined;
      }
      this.readOutput('stdout', fifos[0].ours);
      this.readOutput('stderr', fifos[1].ours);
      if (stdin) {
        this.stdin = new Socket({ fd: stdin.ours, readable: false, writable: true });
        // EPIPE once the container closed stdin or exited: the data had nowhere to go
        this.stdin.on('error', () => { this.stdin = undefined; this.stdinOwner = undefined; });
      }
      const runner = this.runner;
      this.initPid = await runner.create({ stdin: stdin?.theirs, stdout: fifos[0].theirs, stderr: fifos[1].theirs });
      void runner.exited.then(async (e) => {
        // A start in progress settles first: it commits the held output and decides whether this
        // exit is news (a container as quick as `true` can be gone before start's continuation runs;
        // checking first lost that exit for good).
        await this.starting?.catch(() => undefined);
        if (!this.watchExit) return;
        await this.exited(e.exitCode, e.error);
      });
      if (cfg.deferStart) {
        this.state = 'created';
        this.watchExit = true;
        return { shimPid: process.pid, initPid: this.initPid };
      }
      await this.startContainer();
      return { shimPid: process.pid, initPid: this.initPid };
    } catch (err) {
      await this.failed();
      throw err;
    }
  }

  private startContainer(): Promise<void> {
    this.state = 'starting';
    this.starting = (async () => {
      this.initPid = await this.runner!.start();
      this.startedAt = formatTime(nowNs());
      if (this.state === 'starting') this.state = 'running';
      this.watchExit = true;
      // the start succeeded: what the container printed meanwhile belongs in its log
      const held = this.preStart ?? [];
      this.preStart = undefined;
      for (const [stream, chunk, time] of held) this.writeLog(stream, chunk, time);
    })();
    return this.starting;
  }

  /** create/start failed: undo what we made; the caller reports the error and we leave. */
  private async failed(): Promise<void> {
    this.state = 'exited';
    for (const s of Object.values(this.outputs)) s?.destroy();
    this.stdin?.destroy();
    this.log?.close();
    this.log = undefined;
    if (this.fifoTmp) removeDir(this.fifoTmp);
  }

  /** Start a deferStart container. If that fails the runner has removed it and the exit watcher writes the exit file. */
  private async startDeferred(conn: Conn): Promise<void> {
    try {
      await this.startContainer();
      this.replyAndEnd(conn, { ok: true, shimPid: process.pid, initPid: this.initPid });
    } catch (err) {
      this.startError = messageOf(err);
      this.replyAndEnd(conn, { error: this.startError });
    }
  }

  /** Stop: a created container's init ignores signals until it execs, so it is removed instead. */
  private stop(sig: number): void {
    if (this.state === 'created') void this.runner!.abort();
    else this.runner!.kill(sig);
  }

  private async exited(exitCode: number, error: string | undefined): Promise<void> {
    if (this.state === 'exiting' || this.state === 'exited') return;
    this.state = 'exiting';
    const finishedAt = formatTime(nowNs());
    const timeout = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    await Promise.race([this.outputsClosed, timeout(EOF_WAIT_MS)]);
    // the delete kills whatever still holds the pipes (a container without its own pid namespace)
    const fin = await this.runner!.finish();
    await Promise.race([this.outputsClosed, timeout(EOF_WAIT_MS)]);
    for (const s of Object.values(this.outputs)) s?.destroy();
    this.stdin?.destroy();
    this.stdin = undefined;
    this.log?.close();
    const logError = this.log?.error ? `log: ${messageOf(this.log.error)}` : undefined;
    const errors = [...new Set([this.startError, error, fin.error, logError].filter(Boolean))];
    this.exit = {
      exitCode,
      oomKilled: fin.oomKilled,
      // docker's zero time for a container that never started
      startedAt: this.startedAt || '0001-01-01T00:00:00Z',
      finishedAt,
      ...(errors.length ? { error: errors.join('; ') } : {}),
    };
    try {
      writeFileAtomic(this.cfg!.exitFile, JSON.stringify(this.exit) + '\n');
    } catch (err) {
      this.diag(`cannot write exit file ${this.cfg!.exitFile}: ${messageOf(err)}`);
    }
    this.state = 'exited';
    for (const c of this.conns) {
      if (c.op === 'wait' || c.op === 'attach') this.sendExit(c);
    }
    this.endAll();
  }

  /** Leave once every client hung up (or after LINGER_MS). */
  private endAll(): void {
    this.state = 'exited';
    if (this.conns.size === 0) { this.quit(0); return; }
    setTimeout(() => this.quit(0), LINGER_MS).unref();
    for (const c of this.conns) if (!c.op) c.sock.end();
  }

  quit(code: number): void {
    if (this.quitting) return;
    this.quitting = true;
    for (const { path } of [...this.servers]) this.closeServer(path);
    for (const c of this.conns) c.sock.destroy();
    this.onDone(code);
  }

  // ---- signals -------------------------------------------------------------------------------

  signal(sig: NodeJS.Signals): void {
    if (this.state === 'idle') { this.quit(0); return; }
    if ((this.state === 'running' || this.state === 'created') && this.runner) {
      try { this.stop(parseSignal(sig)); } catch (err) { this.diag(`forward ${sig}: ${messageOf(err)}`); }
    }
  }

  // ---- modes ---------------------------------------------------------------------------------

  /** Tell spawnShim how it went, then drop the pipe: nothing ties us to pierd any more. */
  report(value: unknown): void {
    if (this.reportFd === undefined) return;
    try { writeSync(this.reportFd, JSON.stringify(value) + '\n'); } catch { /* spawner gone: nothing to tell */ }
    try { closeSync(this.reportFd); } catch { /* closed */ }
    this.reportFd = undefined;
  }

  async configMode(json: string): Promise<void> {
    this.reportFd = fdOpen(3) ? 3 : undefined;
    let cfg: ShimConfig;
    try {
      cfg = JSON.parse(json) as ShimConfig;
    } catch {
      this.report({ error: 'pier-shim: --config is not valid JSON' });
      process.exit(2);
    }
    try {
      const r = await this.run(cfg);
      this.report({ ok: true, ...r });
    } catch (err) {
      this.report({ error: messageOf(err) });
      this.quit(1);
    }
  }
}

/**
 * A shim host: one process monitoring many containers, each with its own Shim (socket, log, exit
 * file). pierd hands containers over on the host socket; the reply is the start result.
 */
class ShimHost {
  private readonly shims = new Set<Shim>();
  private server: Server | undefined;
  private socket = '';
  private pierdGone = false;

  async listen(socket: string): Promise<void> {
    this.socket = socket;
    try { mkdirp(dirname(socket), 0o700); } catch { /* listen reports it */ }
    try { unlinkSync(socket); } catch { /* no stale socket */ }
    await new Promise<void>((resolve, reject) => {
      const server = createServer((sock) => this.accept(sock));
      server.once('error', (err) => reject(new PierError(`cannot listen on shim host socket ${socket}: ${messageOf(err)}`)));
      server.listen(socket, () => { server.removeAllListeners('error'); resolve(); });
      this.server = server;
    });
  }

  private accept(sock: Socket): void {
    const reader = new FrameReader({ line: true });
    sock.on('error', () => undefined);
    sock.on('data', (chunk: Buffer) => {
      let items;
      try { items = reader.push(chunk); } catch { sock.destroy(); return; }
      for (const it of items) if ('line' in it) void this.request(sock, it.line);
    });
  }

  private async request(sock: Socket, line: string): Promise<void> {
    const reply = (v: unknown) => { if (!sock.destroyed) sock.end(jsonFrame(FRAME.REPLY, v)); };
    let req: Request;
    try { req = JSON.parse(line) as Request; } catch { reply({ error: 'bad request: expected one JSON line {"op":…}' }); return; }
    if (req.op === 'status') { reply({ ok: true, host: true, shimPid: process.pid, containers: this.shims.size }); return; }
    if (req.op === 'version') { reply({ ok: true, host: true, version: PROTOCOL_VERSION, ops: ['start', 'status', 'version'] }); return; }
    if (req.op !== 'start' || req.config === undefined) { reply({ error: `a shim host takes {"op":"start","config":…} or status, not ${JSON.stringify(req.op)}` }); return; }
    if (this.pierdGone) { reply({ error: 'this shim host is retiring (its pierd is gone)' }); return; }
    const shim: Shim = new Shim(() => { this.shims.delete(shim); this.maybeExit(); });
    this.shims.add(shim);
    try {
      const r = await shim.run(req.config as ShimConfig);
      reply({ ok: true, ...r });
    } catch (err) {
      // Clean up first: when the caller hears of the failure, nothing of the container remains.
      shim.quit(1);
      reply({ error: messageOf(err) });
    }
  }

  /** pierd went away (its pipe closed): take no more containers, leave when the last one has. */
  retire(): void {
    this.pierdGone = true;
    this.maybeExit();
  }

  private maybeExit(): void {
    if (!this.pierdGone || this.shims.size > 0) return;
    this.server?.close();
    try { unlinkSync(this.socket); } catch { /* gone */ }
    process.exit(0);
  }

  signal(sig: NodeJS.Signals): void {
    for (const s of this.shims) s.signal(sig);
    if (this.shims.size === 0) process.exit(0);
  }
}

async function configMode(json: string): Promise<void> {
  const shim = new Shim((code) => process.exit(code));
  watchSignals((sig) => shim.signal(sig), (msg) => shim.diag(msg));
  await shim.configMode(json);
}

async function hostMode(socket: string): Promise<void> {
  const host = new ShimHost();
  watchSignals((sig) => host.signal(sig), () => undefined);
  const report = fdOpen(3) ? 3 : undefined;
  try {
    await host.listen(socket);
  } catch (err) {
    if (report !== undefined) { try { writeSync(report, JSON.stringify({ error: messageOf(err) }) + '\n'); } catch { /* gone */ } }
    process.exit(1);
  }
  if (report === undefined) return;
  try { writeSync(report, JSON.stringify({ ok: true, pid: process.pid }) + '\n'); } catch { /* gone */ }
  // The pipe stays open while pierd lives: its EOF means no more containers will come.
  const pipe = new Socket({ fd: report, readable: true, writable: false });
  pipe.on('error', () => undefined);
  pipe.on('data', () => undefined);
  pipe.on('close', () => host.retire());
}

function watchSignals(forward: (sig: NodeJS.Signals) => void, diag: (msg: string) => void): void {
  // No terminal and its own session: a SIGHUP can only be stray. SIGPIPE is ignored by Node.
  process.on('SIGHUP', () => undefined);
  process.on('SIGTERM', () => forward('SIGTERM'));
  process.on('SIGINT', () => forward('SIGINT'));
  // A bug in one handler must not orphan a container: note it and keep monitoring.
  process.on('uncaughtException', (err) => diag(`uncaught: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => diag(`unhandled rejection: ${messageOf(err)}`));
}

function fdOpen(fd: number): boolean {
  try { fstatSync(fd); return true; } catch { return false; }
}

const USAGE = 'usage: pier-shim --config JSON | --host SOCKET';

export async function shimMain(argv: string[]): Promise<void> {
  const [flag, value] = argv;
  if (flag === '--config' && value) return configMode(value);
  if (flag === '--host' && value) return hostMode(value);
  try { writeSync(2, `${USAGE}\n`); } catch { /* no stderr */ }
  process.exitCode = 2;
}
