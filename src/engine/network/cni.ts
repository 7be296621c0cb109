/**
 * The runtime side of CNI (containernetworking/cni SPEC.md): run a plugin list for one attachment.
 * Plugins are executables found on CNI_PATH; each gets CNI_* in its environment and its config on
 * stdin, and answers with a result (ADD) or an error object {code,msg,details} on stdout.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { PierError } from '../../common/errors.ts';
import { firstLine, run } from './exec.ts';

export interface CniPlugin { type: string; capabilities?: Record<string, boolean>; [key: string]: unknown }
export interface CniList { cniVersion: string; name: string; plugins: CniPlugin[] }
export interface CniInterface { name: string; mac?: string; sandbox?: string }
export interface CniIp { address: string; gateway?: string; interface?: number }
export interface CniResult { cniVersion: string; interfaces?: CniInterface[]; ips?: CniIp[]; routes?: unknown[]; dns?: unknown }

/** Where and for whom a list runs; runtimeConfig holds values for plugins' declared capabilities. */
export interface CniRuntime {
  path: string;           // CNI_PATH, colon-separated
  containerId: string;
  netns: string;
  ifname: string;
  runtimeConfig?: Record<string, unknown>;
}

const found = new Map<string, string>();

function locate(type: string, path: string): string {
  const key = `${path}\0${type}`;
  const hit = found.get(key);
  if (hit) return hit;
  if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new PierError(`invalid CNI plugin type "${type}"`);
  for (const dir of path.split(':').filter(Boolean)) {
    const file = join(dir, type);
    try { accessSync(file, constants.X_OK); found.set(key, file); return file; } catch { /* next dir */ }
  }
  throw new PierError(`CNI plugin "${type}" not found in ${path}`);
}

/** The stdin of one plugin: its own keys plus the list's name/version, runtimeConfig and prevResult. */
function pluginConfig(list: CniList, plugin: CniPlugin, rt: CniRuntime, prevResult?: CniResult): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  const wanted = Object.entries(plugin.capabilities ?? {}).filter(([, on]) => on).map(([k]) => k);
  const runtimeConfig: Record<string, unknown> = {};
  for (const k of wanted) if (rt.runtimeConfig?.[k] !== undefined) runtimeConfig[k] = rt.runtimeConfig[k];
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (prevResult) conf.prevResult = prevResult;
  return conf;
}

export async function invoke(command: 'ADD' | 'DEL' | 'CHECK', list: CniList, plugin: CniPlugin, rt: CniRuntime, prevResult?: CniResult): Promise<CniResult | undefined> {
  const file = locate(plugin.type, rt.path);
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifname,
    CNI_PATH: rt.path,
  };
  const r = await run(file, [], { env, input: JSON.stringify(pluginConfig(list, plugin, rt, prevResult)) });
  if (r.code !== 0) {
    let msg = firstLine(r.stderr) || `exit status ${r.code}`;
    try {
      const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
      if (e.msg) msg = e.details ? `${e.msg}: ${e.details}` : e.msg;
    } catch { /* not JSON: keep stderr */ }
    throw new PierError(`CNI ${plugin.type} ${command} on ${list.name}/${rt.ifname}: ${msg.replace(/\s*\n\s*/g, ' ')}`);
  }
  if (command !== 'ADD') return undefined;
  try {
    return JSON.parse(r.stdout) as CniResult;
  } catch {
    throw new PierError(`CNI ${plugin.type} ADD on ${list.name}/${rt.ifname}: unreadable result`);
  }
}

/**
 * ADD every plugin in order, each seeing the previous result. On failure the caller runs delList:
 * DEL is idempotent and must run even for a failed ADD (the spec says so), so undo lives in one place.
 */
export async function addList(list: CniList, rt: CniRuntime): Promise<CniResult> {
  let result: CniResult | undefined;
  for (const plugin of list.plugins) result = await invoke('ADD', list, plugin, rt, result);
  if (!result) throw new PierError(`CNI list ${list.name} has no plugins`);
  return result;
}

/**
 * DEL in reverse order; every plugin is tried, the first failure is reported. `only` restricts it to
 * some of the list's plugins (teardown runs the meta plugins and the main plugin in two phases).
 */
export async function delList(list: CniList, rt: CniRuntime, prevResult?: CniResult, only?: CniPlugin[]): Promise<void> {
  let first: unknown;
  for (const plugin of [...(only ?? list.plugins)].reverse()) {
    try { await invoke('DEL', list, plugin, rt, prevResult); } catch (err) { first ??= err; }
  }
  if (first) throw first;
}
