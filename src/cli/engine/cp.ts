/**
 * `pier cp CONTAINER:SRC DEST` and `pier cp SRC CONTAINER:DEST`: copy files out of or into a
 * container (running or not) as tar streams through pierd; paths resolve inside the container's
 * filesystem and volumes, never above its root.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PierError } from '../../common/errors.ts';
import { bool } from '../args.ts';
import { client, command, parse, q } from './common.ts';

const USAGE = `usage: pier cp [-L] CONTAINER:SRC_PATH DEST_PATH
       pier cp [-L] SRC_PATH CONTAINER:DEST_PATH

  -L, --follow-link   follow a symlink at SRC_PATH (by default the link itself is copied)
`;

function splitRef(s: string): { container?: string; path: string } {
  const i = s.indexOf(':');
  if (i > 0 && !s.startsWith('/') && !s.startsWith('.')) return { container: s.slice(0, i), path: s.slice(i + 1) };
  return { path: s };
}

function tar(args: string[], input?: NodeJS.ReadableStream): { done: Promise<void>; stdout: NodeJS.ReadableStream } {
  const child = spawn('tar', args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  if (input) input.pipe(child.stdin!);
  const done = new Promise<void>((res, rej) => child.on('close', (code) => (code === 0 ? res() : rej(new PierError(`tar: ${err.trim().split('\n')[0] || `exit ${code}`}`)))));
  return { done, stdout: child.stdout! };
}

/** The archive's top entry for a container path, as pierd names it: its last component ('.' for the root). */
function topName(path: string): string {
  const last = path.split('/').filter((c) => c !== '' && c !== '.').pop();
  return last === undefined || last === '..' ? '.' : last;
}

export function cpMain(argv: string[]): Promise<number> {
  return command('cp', USAGE, argv, async () => {
    const p = parse(argv, [{ name: 'archive', short: 'a' }, { name: 'follow-link', short: 'L' }], 'cp');
    const follow = bool(p, 'follow-link');
    if (p.rest.length !== 2) throw new PierError('give a source and a destination');
    const src = splitRef(p.rest[0]);
    const dst = splitRef(p.rest[1]);
    if (!!src.container === !!dst.container) throw new PierError('exactly one of source and destination must be CONTAINER:PATH');
    const c = client();
    if (src.container) {
      const res = await c.bytes('GET', `/containers/${q(src.container)}/archive?path=${q(src.path)}${follow ? '&follow=1' : ''}`);
      const dest = resolve(dst.path);
      if (existsSync(dest) && statSync(dest).isDirectory()) {
        const t = tar(['-x', '-C', dest, '-f', '-'], res);
        await t.done;
      } else {
        if (!existsSync(dirname(dest))) throw new PierError(`destination directory ${dirname(dest)} does not exist`);
        const tmp = mkdtempSync(join(dirname(dest), '.pier-cp-'));
        try {
          await tar(['-x', '-C', tmp, '-f', '-'], res).done;
          renameSync(join(tmp, topName(src.path)), dest);
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
      }
      return 0;
    }
    const local = resolve(src.path);
    if (!existsSync(local)) throw new PierError(`no such file or directory: ${src.path}`);
    const st = await c.json<{ exists: boolean; dir: boolean }>('GET', `/containers/${q(dst.container!)}/stat?path=${q(dst.path)}`);
    let targetDir: string, args: string[];
    if (st.exists && st.dir) {
      targetDir = dst.path;
      args = ['-C', dirname(local), '-cf', '-', '--', basename(local)];
    } else {
      // Copy to a new name: rename the top entry in the archive.
      targetDir = dirname(dst.path);
      const from = basename(local).replace(/[\\,]/g, '\\$&');
      args = ['-C', dirname(local), `--transform=s,^${from},${basename(dst.path).replace(/[\\,&]/g, '\\$&')},`, '-cf', '-', '--', basename(local)];
    }
    if (follow) args.unshift('--dereference');
    const t = tar(args);
    await Promise.all([c.bytes('PUT', `/containers/${q(dst.container!)}/archive?path=${q(targetDir)}`, t.stdout).then((r) => r.resume()), t.done]);
    return 0;
  });
}
