/**
 * `pier logout HOST`: forget the credentials `pier login` stored for a registry (docker's
 * behaviour: not being logged in is a note, not an error).
 */
import { writeStdout } from '../common/log.ts';
import { PierError } from '../common/errors.ts';
import { pierRoot } from '../image/index.ts';
import { AuthStore, parseRegistryHost } from '../registry/index.ts';
import { bool, parseFlags, str } from './args.ts';
import { reportError } from './report.ts';

const USAGE = `usage: pier logout [flags] HOST[:PORT]

flags:
  --root DIR             state root (default $PIER_ROOT, else /var/lib/pier)
`;

export async function logoutMain(argv: string[]): Promise<number> {
  let debug = false;
  let what = 'logout';
  try {
    const p = parseFlags(argv, [
      { name: 'root', value: true },
      { name: 'debug' },
      { name: 'help', short: 'h' },
    ], { what: 'logout' });
    debug = bool(p, 'debug');
    if (bool(p, 'help')) { writeStdout(USAGE); return 0; }
    if (p.rest.length !== 1) throw new PierError('logout: give one registry host (see pier logout --help)');
    const host = parseRegistryHost(p.rest[0]);
    what = `logout ${host}`;
    const removed = new AuthStore(str(p, 'root') ?? pierRoot()).remove(host);
    writeStdout(removed ? `Removing login credentials for ${host}\n` : `Not logged in to ${host}\n`);
    return 0;
  } catch (err) {
    return reportError(err, { what, debug });
  }
}
