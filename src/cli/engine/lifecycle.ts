/**
 * The one-verb container commands (docker's stop, restart, kill, rm, pause, unpause, wait): each
 * takes one or more containers, prints the name it was given on success, reports each failure on
 * its own line and exits non-zero if any failed.
 */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { ExitInfo } from '../../engine/index.ts';
import { bool, str, type FlagSpec, type Parsed } from '../args.ts';
import { client, command, parse, q } from './common.ts';

interface Verb {
  usage: string;
  flags: FlagSpec[];
  /** Does the work for one container; returns what to print (default: the ref). */
  act(ref: string, p: Parsed): Promise<string | void>;
}

function timeout(p: Parsed): string {
  const t = str(p, 'time') ?? str(p, 't');
  if (t === undefined) return '';
  if (!/^\d+$/.test(t)) throw new PierError(`invalid --time ${JSON.stringify(t)}: whole seconds`);
  return `?t=${t}`;
}

const VERBS: Record<string, Verb> = {
  stop: {
    usage: 'usage: pier stop [-t SECONDS] CONTAINER...\n\n  -t, --time N   seconds to wait before SIGKILL (default 10, or the container\'s --stop-timeout)\n',
    flags: [{ name: 'time', short: 't', value: true }],
    act: async (ref, p) => { await client().json('POST', `/containers/${q(ref)}/stop${timeout(p)}`); },
  },
  restart: {
    usage: 'usage: pier restart [-t SECONDS] CONTAINER...\n',
    flags: [{ name: 'time', short: 't', value: true }],
    act: async (ref, p) => { await client().json('POST', `/containers/${q(ref)}/restart${timeout(p)}`); },
  },
  kill: {
    usage: 'usage: pier kill [-s SIGNAL] CONTAINER...\n\n  -s, --signal SIG   signal to send (default SIGKILL)\n',
    flags: [{ name: 'signal', short: 's', value: true }],
    act: async (ref, p) => { await client().json('POST', `/containers/${q(ref)}/kill?signal=${q(str(p, 'signal') ?? 'SIGKILL')}`); },
  },
  rm: {
    usage: 'usage: pier rm [-f] [-v] CONTAINER...\n\n  -f, --force     kill a running container first\n  -v, --volumes   also remove its anonymous volumes\n',
    flags: [{ name: 'force', short: 'f' }, { name: 'volumes', short: 'v' }],
    act: async (ref, p) => { await client().json('DELETE', `/containers/${q(ref)}?force=${bool(p, 'force') ? 1 : 0}&v=${bool(p, 'volumes') ? 1 : 0}`); },
  },
  pause: {
    usage: 'usage: pier pause CONTAINER...\n',
    flags: [],
    act: async (ref) => { await client().json('POST', `/containers/${q(ref)}/pause`); },
  },
  unpause: {
    usage: 'usage: pier unpause CONTAINER...\n',
    flags: [],
    act: async (ref) => { await client().json('POST', `/containers/${q(ref)}/unpause`); },
  },
  wait: {
    usage: 'usage: pier wait CONTAINER...\n\nBlocks until each container stops, then prints its exit code.\n',
    flags: [],
    act: async (ref) => String((await client().json<ExitInfo>('POST', `/containers/${q(ref)}/wait`)).exitCode),
  },
};

export const LIFECYCLE_VERBS = Object.keys(VERBS);

export function lifecycleMain(verb: string, argv: string[]): Promise<number> {
  const v = VERBS[verb];
  return command(verb, v.usage, argv, async () => {
    const p = parse(argv, v.flags, verb);
    if (p.rest.length === 0) throw new PierError(`give at least one container (see pier ${verb} --help)`);
    let failed = 0;
    for (const ref of p.rest) {
      try {
        const out = await v.act(ref, p);
        writeStdout(`${out ?? ref}\n`);
      } catch (err) {
        failed++;
        process.stderr.write(`pier: ${verb} ${ref}: ${(err as Error).message.split('\n')[0]}\n`);
      }
    }
    return failed ? 1 : 0;
  });
}
