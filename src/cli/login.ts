/**
 * `pier login HOST -u USER [-p PASS | --password-stdin]`: check the credentials against the
 * registry's `/v2/` and store them in `$PIER_ROOT/auth.json` (mode 0600, docker's format).
 */
import { readFileSync } from 'node:fs';
import { writeStdout } from '../common/log.ts';
import { PierError } from '../common/errors.ts';
import { pierRoot } from '../image/index.ts';
import { login, parseRegistryHost } from '../registry/index.ts';
import { bool, parseFlags, str } from './args.ts';
import { reportError } from './report.ts';
import { REGISTRY_FLAGS, REGISTRY_USAGE, registryOptions } from './registry-flags.ts';

const USAGE = `usage: pier login [flags] HOST[:PORT]

flags:
  -u, --username USER    user name
  -p, --password PASS    password (visible in the process list: prefer --password-stdin)
  --password-stdin       read the password from stdin
${REGISTRY_USAGE}  --root DIR             state root (default $PIER_ROOT, else /var/lib/pier)
`;

export async function loginMain(argv: string[]): Promise<number> {
  let debug = false;
  let what = 'login';
  try {
    const p = parseFlags(argv, [
      { name: 'username', short: 'u', value: true },
      { name: 'password', short: 'p', value: true },
      { name: 'password-stdin' },
      ...REGISTRY_FLAGS,
      { name: 'root', value: true },
      { name: 'debug' },
      { name: 'help', short: 'h' },
    ], { what: 'login' });
    debug = bool(p, 'debug');
    if (bool(p, 'help')) { writeStdout(USAGE); return 0; }
    if (p.rest.length !== 1) throw new PierError('login: give one registry host (see pier login --help)');
    const host = parseRegistryHost(p.rest[0]);
    what = `login ${host}`;
    const username = str(p, 'username');
    if (!username) throw new PierError('give a user name with -u');
    let password = str(p, 'password');
    if (bool(p, 'password-stdin')) {
      if (password !== undefined) throw new PierError('give -p or --password-stdin, not both');
      password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    }
    if (password === undefined) throw new PierError('give a password with -p or --password-stdin');
    const root = str(p, 'root') ?? pierRoot();
    await login(root, host, { username, password }, registryOptions(p, root, host, { storedCredentials: false }));
    writeStdout('Login Succeeded\n');
    return 0;
  } catch (err) {
    return reportError(err, { what, debug });
  }
}
