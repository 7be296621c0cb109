/**
 * start: open exec.fifo for reading so the blocked init can write its byte and go on to exec.
 * The fifo is opened non-blocking and polled, so a dead init is noticed instead of hanging.
 */
import { closeSync, constants, openSync, readSync, unlinkSync, existsSync } from 'node:fs';
import { messageOf, PierError } from '../../common/errors.ts';
import { isProcessAlive } from '../proc.ts';
import { runHooks } from '../hooks.ts';
import type { RuntimeContext } from './context.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function start(ctx: RuntimeContext, id: string): Promise<void> {
  const rec = ctx.store.load(id);
  const status = ctx.store.status(rec);
  if (status === 'stopped') throw new PierError('cannot start a container that has stopped');
  if (status !== 'created') throw new PierError(`cannot start a container in the ${status} state`);
  const fifo = ctx.store.fifo(id);
  let fd: number;
  try {
    fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new PierError(`cannot open exec fifo of ${id}: ${messageOf(err)}`);
  }
  try {
    const buf = Buffer.alloc(1);
    const readByte = (): boolean => {
      try {
        return readSync(fd, buf, 0, 1, null) === 1;
      } catch (err) {
        if ((err as { code?: string }).code !== 'EAGAIN') throw err;
        return false;
      }
    };
    let delay = 0;
    while (!readByte()) {
      // The init may have written its byte, exec'd and exited between two reads: the byte stays in
      // the fifo while we hold it open, so read once more before calling it dead.
      if (!isProcessAlive(rec.pid, rec.startTime)) {
        if (readByte()) break;
        throw new PierError(`container ${id} init process exited before start`);
      }
      if (!existsSync(fifo)) throw new PierError(`container ${id} was started by another caller`);
      await sleep(delay);
      delay = Math.min(delay + 1, 10);
    }
  } finally {
    closeSync(fd);
  }
  try { unlinkSync(fifo); } catch { /* a concurrent start removed it */ }
  const state = ctx.store.stateOf(rec);
  try {
    await runHooks('poststart', rec.config.hooks?.poststart, state);
  } catch (err) {
    // runtime-spec: a failing poststart hook is a warning; the container keeps running.
    ctx.log.warn(messageOf(err));
  }
}
