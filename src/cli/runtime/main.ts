/**
 * pier-runtime's front: global flags, then dispatch to one command file. Errors become one line on
 * stderr and, with --log, one line in the log file (JSON with --log-format json): podman reads the
 * whole log file as one object, containerd keeps the last error line.
 */
import { Logger, writeStderr, writeStdout, type LogFormat } from '../../common/log.ts';
import { PierError, messageOf } from '../../common/errors.ts';
import { Runtime, DEFAULT_ROOT, OCI_VERSION } from '../../runtime/index.ts';
import { bool, parseFlags, str } from '../args.ts';
import type { Command } from './command.ts';
import { create } from './create.ts';
import { run } from './run.ts';
import { start } from './start.ts';
import { state } from './state.ts';
import { list } from './list.ts';
import { kill } from './kill.ts';
import { del } from './delete.ts';
import { exec } from './exec.ts';
import { ps } from './ps.ts';
import { pause, resume } from './pause.ts';
import { update } from './update.ts';
import { features } from './features.ts';
import { spec } from './spec.ts';
import { events } from './events.ts';

export { VERSION } from '../version.ts';
import { VERSION } from '../version.ts';
const COMMANDS: Command[] = [create, run, start, state, list, kill, del, exec, ps, pause, resume, update, features, spec, events];

const GLOBAL = [
  { name: 'root', value: true },
  { name: 'log', value: true },
  { name: 'log-format', value: true },
  { name: 'debug' },
  { name: 'systemd-cgroup' },
  { name: 'rootless', value: true },
  { name: 'criu', value: true },
  { name: 'version', short: 'v' },
  { name: 'help', short: 'h' },
];

function usage(): string {
  return `pier-runtime ${VERSION}: an OCI runtime with runc's command line\n\n` +
    `usage: pier-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] <command> [flags] <container-id>\n\ncommands:\n` +
    COMMANDS.map((c) => `  ${c.usage}`).join('\n') + '\n';
}

/** The default --root: /run/pier-runtime for root; $XDG_RUNTIME_DIR/pier-runtime otherwise when set (empty = unset). */
function defaultRoot(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (process.getuid?.() !== 0 && xdg) return `${xdg}/pier-runtime`;
  return DEFAULT_ROOT;
}

export async function runtimeMain(argv: string[], prog = 'pier-runtime'): Promise<number> {
  const log = new Logger();
  try {
    const g = parseFlags(argv, GLOBAL, { stopAtPositional: true, what: prog });
    const fmt = str(g, 'log-format') ?? 'text';
    if (fmt !== 'text' && fmt !== 'json') throw new PierError(`--log-format must be text or json, not ${JSON.stringify(fmt)}`);
    log.format = fmt as LogFormat;
    log.file = str(g, 'log') || undefined;
    log.debugEnabled = bool(g, 'debug');
    if (bool(g, 'version')) {
      writeStdout(`${prog} version ${VERSION}\nspec: ${OCI_VERSION}\n`);
      return 0;
    }
    const name = g.rest[0];
    if (bool(g, 'help') || !name || name === 'help') {
      writeStdout(usage());
      return name || bool(g, 'help') ? 0 : 1;
    }
    if (bool(g, 'systemd-cgroup')) throw new PierError('--systemd-cgroup is not supported: pier-runtime manages cgroupfs directly (there is no systemd here)');
    const cmd = COMMANDS.find((c) => c.name === name);
    if (!cmd) throw new PierError(`unknown command ${JSON.stringify(name)} (see ${prog} --help)`);
    // Like runc (urfave/cli), flags end at the first positional: `exec id sh -c …` keeps its -c.
    const p = parseFlags(g.rest.slice(1), [...cmd.flags, { name: 'help', short: 'h' }], { what: name, stopAtPositional: true });
    if (bool(p, 'help')) {
      writeStdout(`usage: ${prog} ${cmd.usage}\n`);
      return 0;
    }
    const root = str(g, 'root') || defaultRoot();
    const rt = new Runtime({ root, log });
    return await cmd.run({ rt, log, root }, p);
  } catch (err) {
    const msg = messageOf(err);
    if (log.file) log.error(msg);
    if (!log.file || log.format === 'text') writeStderr(`${prog}: ${msg}\n`);
    else writeStderr(log.line('error', msg));
    if (log.debugEnabled && !(err instanceof PierError) && err instanceof Error && err.stack) writeStderr(err.stack + '\n');
    return err instanceof PierError ? err.exitCode : 1;
  }
}
