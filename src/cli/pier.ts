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
import { runMain } from './engine/run.ts';
import { createMain } from './engine/create.ts';
import { startMain } from './engine/start.ts';
import { lifecycleMain, LIFECYCLE_VERBS } from './engine/lifecycle.ts';
import { psMain } from './engine/ps.ts';
import { logsMain } from './engine/logs.ts';
import { execMain } from './engine/exec.ts';
import { inspectMain } from './engine/inspect.ts';
import { statsMain } from './engine/stats.ts';
import { topMain } from './engine/top.ts';
import { portMain } from './engine/port.ts';
import { cpMain } from './engine/cp.ts';
import { networkMain } from './engine/network.ts';
import { volumeMain } from './engine/volume.ts';
import { systemMain } from './engine/system.ts';
import { daemonMain } from './engine/daemon.ts';
import { imagesMain, rmiMain, tagMain } from './engine/images.ts';

const USAGE = `pier ${VERSION}: the cloud-native stack, from the chroot jail up

usage: pier <command> …

containers (served by pierd, started on demand):
  run, create, start, stop, restart, kill, rm, pause, unpause, wait
  ps, logs, exec, inspect, stats, top, port, cp
  network …, volume …, system df|prune, daemon
images:
  images, tag, rmi, pull, push, build, login
other:
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
    case 'run': return runMain(rest);
    case 'create': return createMain(rest);
    case 'start': return startMain(rest);
    case 'ps': return psMain(rest);
    case 'logs': return logsMain(rest);
    case 'exec': return execMain(rest);
    case 'inspect': return inspectMain(rest);
    case 'stats': return statsMain(rest);
    case 'top': return topMain(rest);
    case 'port': return portMain(rest);
    case 'cp': return cpMain(rest);
    case 'network': return networkMain(rest);
    case 'volume': return volumeMain(rest);
    case 'system': return systemMain(rest);
    case 'daemon': return daemonMain(rest);
    case 'images': return imagesMain(rest);
    case 'tag': return tagMain(rest);
    case 'rmi': return rmiMain(rest);
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
      if (cmd && LIFECYCLE_VERBS.includes(cmd)) return lifecycleMain(cmd, rest);
      writeStderr(`pier: unknown command ${JSON.stringify(cmd)} (see pier --help)\n`);
      return 1;
  }
}

void main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
