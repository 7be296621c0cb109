/**
 * The DNS server for user networks, in the daemon: one UDP socket per network on <gateway>:53
 * (containers get `nameserver <gateway>`). Names pier knows are answered from `lookup`; anything else
 * is relayed to the host's nameservers (read from /etc/resolv.conf, which may well be a loopback
 * resolver: this process is in the host's namespace), or NXDOMAIN when there are none.
 */
import { createSocket, type Socket } from 'node:dgram';
import { statSync } from 'node:fs';
import { hostResolvConf, parseResolvConf } from '../etc.ts';
import {
  RCODE_NOERROR, RCODE_NOTIMP, RCODE_NXDOMAIN, RCODE_SERVFAIL, TYPE_A, TYPE_PTR, CLASS_IN,
  aRecord, answer, parseQuery, ptrRecord, reverseName, type Query, type ResourceRecord,
} from './wire.ts';

/** What pier knows about a name asked by `source` on the network served at `local`. */
export type Lookup = (q: { name: string; source: string; local: string }) => string[] | undefined;
/** The container name for an address, for reverse lookups. */
export type ReverseLookup = (q: { ip: string; source: string; local: string }) => string | undefined;

export interface Upstream { address: string; port: number }

const FORWARD_TIMEOUT_MS = 2000;
const MAX_FORWARDS = 256;

export class DnsServer {
  private sockets = new Map<string, Socket>();
  private lookup: Lookup;
  private reverse: ReverseLookup;
  private log: (msg: string) => void;
  private forwards = 0;
  private upstreamCache: { mtimeMs: number; list: string[] } | undefined;

  private fixedUpstreams: (() => Upstream[]) | undefined;

  /** `upstreams` replaces /etc/resolv.conf's nameservers (tests). */
  constructor(opts: { lookup: Lookup; reverse: ReverseLookup; log?: (msg: string) => void; upstreams?: () => Upstream[] }) {
    this.lookup = opts.lookup;
    this.reverse = opts.reverse;
    this.log = opts.log ?? (() => {});
    this.fixedUpstreams = opts.upstreams;
  }

  listening(ip: string): boolean {
    return this.sockets.has(ip);
  }

  /** Serve on ip:port (53 unless a test says otherwise). */
  async listen(ip: string, port = 53): Promise<void> {
    if (this.sockets.has(ip)) return;
    const sock = createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: ip, port, exclusive: true }, () => { sock.off('error', reject); resolve(); });
    });
    sock.on('error', (err) => this.log(`dns ${ip}: ${err.message}`));
    sock.on('message', (msg, rinfo) => { this.handle(sock, ip, msg, rinfo.address, rinfo.port); });
    this.sockets.set(ip, sock);
  }

  async unlisten(ip: string): Promise<void> {
    const sock = this.sockets.get(ip);
    if (!sock) return;
    this.sockets.delete(ip);
    await new Promise<void>((resolve) => sock.close(() => resolve()));
  }

  async close(): Promise<void> {
    await Promise.all([...this.sockets.keys()].map((ip) => this.unlisten(ip)));
  }

  private handle(sock: Socket, local: string, msg: Buffer, source: string, port: number): void {
    const q = parseQuery(msg);
    if (!q) return;
    const reply = (buf: Buffer) => sock.send(buf, port, source, () => {});
    if (q.qclass !== CLASS_IN || (q.flags & 0x7800) !== 0) { reply(answer(msg, q, RCODE_NOTIMP, [])); return; }
    const rev = q.type === TYPE_PTR ? reverseName(q.name) : undefined;
    if (rev) {
      const name = this.reverse({ ip: rev, source, local });
      if (name) { reply(answer(msg, q, RCODE_NOERROR, [ptrRecord(name)])); return; }
    } else {
      const ips = this.lookup({ name: q.name, source, local });
      if (ips) {
        // A known name: A records for A; every other type (AAAA, MX, ...) is an empty NOERROR.
        const records: ResourceRecord[] = q.type === TYPE_A ? ips.map(aRecord) : [];
        reply(answer(msg, q, RCODE_NOERROR, records));
        return;
      }
    }
    void this.forward(msg, q).then(reply);
  }

  /** The host's nameservers, re-read when /etc/resolv.conf changes; never one of our own addresses. */
  private upstreams(): Upstream[] {
    if (this.fixedUpstreams) return this.fixedUpstreams();
    let mtimeMs = -1;
    try { mtimeMs = statSync('/etc/resolv.conf').mtimeMs; } catch { /* none */ }
    if (this.upstreamCache?.mtimeMs !== mtimeMs) {
      this.upstreamCache = { mtimeMs, list: parseResolvConf(hostResolvConf()).nameservers };
    }
    return this.upstreamCache.list.filter((ip) => !this.sockets.has(ip)).map((address) => ({ address, port: 53 }));
  }

  private async forward(msg: Buffer, q: Query): Promise<Buffer> {
    const ups = this.upstreams();
    if (ups.length === 0) return answer(msg, q, RCODE_NXDOMAIN, []);
    if (this.forwards >= MAX_FORWARDS) return answer(msg, q, RCODE_SERVFAIL, []);
    this.forwards++;
    try {
      for (const up of ups) {
        const res = await ask(up, msg, q.id).catch(() => undefined);
        if (res) return res;
      }
      return answer(msg, q, RCODE_SERVFAIL, []);
    } finally {
      this.forwards--;
    }
  }
}

/** One query to one upstream from a fresh socket (a fresh source port: nothing to match but the id). */
function ask(up: Upstream, msg: Buffer, id: number): Promise<Buffer> {
  const sock = createSocket(up.address.includes(':') ? 'udp6' : 'udp4');
  return new Promise<Buffer>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, res?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { sock.close(); } catch { /* already closed */ }
      if (err) reject(err); else resolve(res!);
    };
    const timer = setTimeout(() => finish(new Error('timeout')), FORWARD_TIMEOUT_MS);
    sock.on('error', (err) => finish(err));
    sock.on('message', (res, rinfo) => {
      if (rinfo.address === up.address && res.length >= 12 && res.readUInt16BE(0) === id) finish(undefined, res);
    });
    sock.send(msg, up.port, up.address, (err) => { if (err) finish(err); });
  });
}
