import type { DeviceCgroup, LinuxResources } from '../../spec.ts';
import { Dir, fail, type ControllerImpl } from '../dir.ts';

/** "c 1:3 rwm" — the line devices.allow/devices.deny take; absent or negative numbers are wildcards. */
export function deviceRule(d: DeviceCgroup): string {
  const type = d.type ?? 'a';
  if (!['a', 'c', 'b'].includes(type)) fail('device rule type', JSON.stringify(type), 'expected a, c or b');
  const access = d.access ?? 'rwm';
  if (!/^[rwm]{1,3}$/.test(access)) fail('device rule access', JSON.stringify(access), 'expected letters from rwm');
  const num = (n: number | undefined) => (n === undefined || n < 0 ? '*' : String(n));
  return `${type} ${num(d.major)}:${num(d.minor)} ${access}`;
}

/**
 * Deny everything, then replay the rules in order, each to devices.allow or devices.deny: the
 * resulting list is exactly what the spec describes no matter what the cgroup allowed before.
 */
export const devices: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const rules = r.devices;
    if (!rules || rules.length === 0) return;
    const lines = rules.map((d) => ({ allow: d.allow, line: deviceRule(d) }));
    dir.set('devices.deny', 'a', 'device rule', '"deny a"');
    for (const { allow, line } of lines) {
      dir.set(allow ? 'devices.allow' : 'devices.deny', line, 'device rule', JSON.stringify(`${allow ? 'allow' : 'deny'} ${line}`));
    }
  },
};
