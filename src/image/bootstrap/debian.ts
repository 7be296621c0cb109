/**
 * `debian:<suite>` with debootstrap: a minbase tree from the mirror this machine's apt already
 * uses, stripped of apt's lists and caches, packed as one gzip layer.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, accessSync, constants } from 'node:fs';
import { join, delimiter } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PierError } from '../../common/errors.ts';
import type { ContentStore, Lease } from '../store/content.ts';
import type { Descriptor } from '../oci/types.ts';
import { writeImage, DEFAULT_PATH } from '../transfer/compose.ts';
import { layerFromDirectory } from '../transfer/rootfs.ts';
import { sourceDateEpochFromEnv } from './busybox.ts';

export interface DebianOptions {
  suite?: string;
  /** default: from $PIER_DEBIAN_MIRROR, else the machine's apt sources */
  mirror?: string;
  /**
   * Keep the debootstrapped tree in `<cacheDir>/debian-<suite>` and reuse it next time (tests use
   * this: debootstrap takes about a minute).
   */
  cacheDir?: string;
  sourceDateEpoch?: number;
  /** apt sources to read (for tests) */
  aptRoot?: string;
}

/** The first mirror URI for `suite` in apt's one-line and deb822 sources (security ones skipped). */
export function mirrorFromApt(suite: string, aptRoot = '/etc/apt'): string | undefined {
  const found: { uri: string; suites: string[] }[] = [];
  const list = join(aptRoot, 'sources.list');
  const parts = join(aptRoot, 'sources.list.d');
  const files: string[] = existsSync(list) ? [list] : [];
  if (existsSync(parts)) for (const n of readdirSync(parts).sort()) files.push(join(parts, n));
  for (const f of files) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    if (f.endsWith('.list')) {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim().split(/\s+/);
        if (line[0] === 'deb' && line.length >= 3) found.push({ uri: line[1], suites: [line[2]] });
      }
    } else if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>();
        for (const raw of stanza.split('\n')) {
          if (raw.startsWith('#')) continue;
          const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
          if (m) fields.set(m[1].toLowerCase(), m[2].trim());
        }
        if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
        if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
        const suites = (fields.get('suites') ?? '').split(/\s+/);
        for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) found.push({ uri, suites });
      }
    }
  }
  const hit = found.find((s) => s.suites.includes(suite) && !/security/.test(s.uri)) ?? found.find((s) => !/security/.test(s.uri) && s.suites.some((x) => !x.includes('security')));
  return hit?.uri;
}

function which(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, cmd);
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (b: Buffer) => { output = (output + b.toString()).slice(-8000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Apt's downloaded lists and package caches: large, and stale the moment the image is built. */
export function stripAptCaches(root: string): void {
  const clear = (dir: string, keep: (n: string) => boolean = () => false) => {
    let names: string[];
    try { names = readdirSync(dir); } catch { return; }
    for (const n of names) if (!keep(n)) rmSync(join(dir, n), { recursive: true, force: true });
  };
  clear(join(root, 'var/lib/apt/lists'), (n) => n === 'partial' || n === 'lock');
  clear(join(root, 'var/lib/apt/lists/partial'));
  clear(join(root, 'var/cache/apt/archives'), (n) => n === 'partial' || n === 'lock');
  clear(join(root, 'var/cache/apt/archives/partial'));
  for (const f of ['pkgcache.bin', 'srcpkgcache.bin']) rmSync(join(root, 'var/cache/apt', f), { force: true });
  rmSync(join(root, 'debootstrap'), { recursive: true, force: true });
}

const DONE_MARK = '.pier-debootstrap-done';

export async function bootstrapDebian(store: ContentStore, lease: Lease, opts: DebianOptions = {}): Promise<Descriptor> {
  const suite = opts.suite ?? 'bookworm';
  if (!/^[a-z0-9-]+$/.test(suite)) throw new PierError(`invalid Debian suite ${JSON.stringify(suite)}`);
  const debootstrap = which('debootstrap');
  if (!debootstrap) throw new PierError('debootstrap not found: install it (apt-get install debootstrap)');
  if (process.getuid?.() !== 0) throw new PierError('pier image bootstrap debian must run as root (debootstrap creates device nodes and root-owned files)');
  const mirror = opts.mirror ?? process.env.PIER_DEBIAN_MIRROR ?? mirrorFromApt(suite, opts.aptRoot);
  if (!mirror) throw new PierError('no Debian mirror found in /etc/apt/sources.list or sources.list.d/*.sources; set PIER_DEBIAN_MIRROR');
  store.init();
  const target = opts.cacheDir ? join(opts.cacheDir, `debian-${suite}`) : join(store.ingestDir, `debootstrap-${randomBytes(6).toString('hex')}`);
  const cached = opts.cacheDir !== undefined && existsSync(join(target, DONE_MARK));
  try {
    if (!cached) {
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target, { recursive: true });
      const r = await run(debootstrap, ['--variant=minbase', suite, target, mirror]);
      if (r.code !== 0) {
        let log = '';
        try { log = readFileSync(join(target, 'debootstrap/debootstrap.log'), 'utf8').slice(-2000); } catch { /* no log */ }
        const tail = (log || r.output).trim().split('\n').slice(-5).join(' | ');
        throw new PierError(`debootstrap ${suite} from ${mirror} failed (exit ${r.code}): ${tail}`);
      }
      stripAptCaches(target);
      if (opts.cacheDir) writeFileSync(join(target, DONE_MARK), `${suite} ${mirror}\n`);
    }
    const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv();
    // The cache marker must not end up in the image: pack from a tree without it.
    const marker = join(target, DONE_MARK);
    const markerText = existsSync(marker) ? readFileSync(marker) : undefined;
    if (markerText) rmSync(marker);
    let layer;
    try {
      layer = await layerFromDirectory(target, store, lease, { sourceDateEpoch: epoch });
    } finally {
      if (markerText) writeFileSync(marker, markerText);
    }
    const created = new Date(epoch !== undefined ? epoch * 1000 : Date.now()).toISOString();
    const img = await writeImage(store, {
      layers: [layer],
      config: { Env: [DEFAULT_PATH], Cmd: ['bash'] },
      created,
      history: [{ created, created_by: `pier image bootstrap debian (debootstrap --variant=minbase ${suite} ${mirror})` }],
    }, lease);
    return img.descriptor;
  } finally {
    if (!opts.cacheDir) rmSync(target, { recursive: true, force: true });
  }
}
