/**
 * State under <root>/networks, one JSON file per object, each written atomically so a crash leaves
 * either the old or the new record:
 *   configs/<network id>.json      NetworkConfig
 *   sandboxes/<container id>.json  SandboxRecord (the CNI lists and results teardown needs)
 *   ipam/<network name>/           host-local's leases (owned by the plugin)
 */
import { readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { mkdirp, writeFileAtomic } from '../../common/atomic.ts';
import { errnoOf } from '../../common/errors.ts';
import type { NetworkConfig, SandboxRecord } from './types.ts';

export class Store {
  readonly dir: string;
  readonly configs: string;
  readonly sandboxes: string;
  readonly ipam: string;

  constructor(root: string) {
    this.dir = join(root, 'networks');
    this.configs = join(this.dir, 'configs');
    this.sandboxes = join(this.dir, 'sandboxes');
    this.ipam = join(this.dir, 'ipam');
    for (const d of [this.configs, this.sandboxes, this.ipam]) mkdirp(d, 0o700);
  }

  loadNetworks(): NetworkConfig[] {
    return readAll<NetworkConfig>(this.configs);
  }

  saveNetwork(n: NetworkConfig): void {
    writeFileAtomic(join(this.configs, `${n.id}.json`), JSON.stringify(n, null, 2) + '\n');
  }

  deleteNetwork(n: NetworkConfig): void {
    rmSync(this.ipamDir(n.name), { recursive: true, force: true });
    removeFile(join(this.configs, `${n.id}.json`));
  }

  /** host-local keeps its leases under <dataDir>/<CNI network name>. */
  ipamDir(networkName: string): string {
    return join(this.ipam, networkName);
  }

  loadSandboxes(): SandboxRecord[] {
    return readAll<SandboxRecord>(this.sandboxes);
  }

  loadSandbox(containerId: string): SandboxRecord | undefined {
    try {
      return JSON.parse(readFileSync(join(this.sandboxes, `${containerId}.json`), 'utf8')) as SandboxRecord;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  saveSandbox(s: SandboxRecord): void {
    writeFileAtomic(join(this.sandboxes, `${s.containerId}.json`), JSON.stringify(s) + '\n');
  }

  deleteSandbox(containerId: string): void {
    removeFile(join(this.sandboxes, `${containerId}.json`));
  }
}

function removeFile(path: string): void {
  try { unlinkSync(path); } catch (err) { if (errnoOf(err) !== 'ENOENT') throw err; }
}

/** Every readable record in a directory; temp files and torn leftovers are skipped. */
function readAll<T>(dir: string): T[] {
  const out: T[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json') || f.startsWith('.')) continue;
    try { out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as T); } catch { /* removed meanwhile or unreadable */ }
  }
  return out;
}
