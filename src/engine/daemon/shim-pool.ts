/**
 * A small pool of pre-started idle shims: Node's start-up (~30 ms) is paid before `pier run` asks,
 * not during it. A start takes an idle shim if one is ready (else spawns a fresh one) and the pool
 * refills in the background. Idle shims exit by themselves if pierd dies (shim/README.md).
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { Logger } from '../../common/log.ts';
import { messageOf } from '../../common/errors.ts';
import { IdleShim, spawnShim, startIdleShim, type ShimConfig, type StartResult } from '../shim/index.ts';

export class ShimPool {
  private ready: IdleShim[] = [];
  private filling = 0;
  private closed = false;
  private readonly dir: string;
  private readonly size: number;
  private readonly log: Logger;

  constructor(dir: string, log: Logger, size = Number(process.env.PIER_SHIM_POOL ?? 2)) {
    this.dir = dir;
    this.size = size;
    this.log = log;
  }

  fill(): void {
    while (!this.closed && this.ready.length + this.filling < this.size) {
      this.filling++;
      const socket = join(this.dir, `idle-${randomBytes(6).toString('hex')}.sock`);
      startIdleShim(socket).then((s) => {
        if (this.closed) s.close();
        else this.ready.push(s);
      }, (err: unknown) => {
        this.log.warn(`idle shim: ${messageOf(err)}`);
        rmSync(socket, { force: true });
      }).finally(() => { this.filling--; });
    }
  }

  async start(cfg: ShimConfig): Promise<StartResult> {
    const idle = this.ready.shift();
    this.fill();
    if (!idle) return spawnShim(cfg);
    return idle.start(cfg);
  }

  close(): void {
    this.closed = true;
    for (const s of this.ready.splice(0)) s.close();
  }
}
