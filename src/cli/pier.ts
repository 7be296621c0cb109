/**
 * Entry point of `pier`: pier's own command line. Each layer adds its commands here as it lands;
 * `pier runtime …` is pier-runtime itself.
 */
import { runtimeMain, VERSION } from './runtime/main.ts';
import { imageMain } from './image/main.ts';
import { buildMain } from './build.ts';
import { pushMain } from './push.ts';
import { pullMain } from './pull.ts';
import { loginMain } from './login.ts';
import { registryMain } from './registry.ts';
import { writeStdout, writeStderr } from '../common/log.ts';

const USAGE = `pier ${VERSION}: the cloud-native stack, from the chroot jail up

usage: pier <command> …

commands:
  runtime …     the OCI runtime (same as pier-runtime; see pier runtime --help)
  image …       images: ls, inspect, rm, tag, import, export, history, bootstrap, prune (see pier image --help)
  build …       build an image from a Containerfile (see pier build --help)
  push …        push an image to a registry (see pier push --help)
  pull …        pull an image from a registry (see pier pull --help)
  login …       log in to a registry (see pier login --help)
  registry …    an OCI distribution registry: serve, gc (see pier registry --help)
  version       print versions
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'runtime':
      return runtimeMain(rest, 'pier runtime');
    case 'image':
      return imageMain(rest);
    case 'build':
      return buildMain(rest);
    case 'push':
      return pushMain(rest);
    case 'pull':
      return pullMain(rest);
    case 'login':
      return loginMain(rest);
    case 'registry':
      return registryMain(rest);
    case 'version':
    case '--version':
      writeStdout(`pier ${VERSION}\nnode ${process.versions.node}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      writeStdout(USAGE);
      return cmd === undefined ? 1 : 0;
    default:
      writeStderr(`pier: unknown command ${JSON.stringify(cmd)} (see pier --help)\n`);
      return 1;
  }
}

void main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
