/** Facts about host processes read from /proc: start time (for the PID-reuse guard) and liveness. */
import { readFileSync } from 'node:fs';

export interface ProcStat { state: string; startTime: string }

/** /proc/<pid>/stat fields 3 (state) and 22 (start time in clock ticks since boot). */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], startTime: rest[19] };
}

/** True while pid runs the process that started at startTime (not a zombie, not a reused pid). */
export function isProcessAlive(pid: number, startTime?: string): boolean {
  if (pid <= 0) return false;
  const st = procStat(pid);
  if (!st) return false;
  if (st.state === 'Z' || st.state === 'X') return false;
  return startTime === undefined || st.startTime === startTime;
}

/** Signal a process; ESRCH is not an error (it is already gone). */
export function signalProcess(pid: number, sig: number): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'ESRCH') return false;
    throw err;
  }
}

/** Wait (polling) until the process is gone, up to timeoutMs. Returns whether it died. */
export async function waitGone(pid: number, startTime: string | undefined, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (isProcessAlive(pid, startTime)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 20);
  }
  return true;
}
