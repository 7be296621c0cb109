/**
 * Entry point of `pier`: pier's own command line. Each layer adds its commands here as it lands;
 * `pier runtime …` is pier-runtime itself. Commands are imported when used: start-up then only
 * evaluates the modules the command needs (measured: ~35 ms less for `pier run`).
 */
import { writeStdout, writeStderr } from '../common/log.ts';
import { VERSION } from './version.ts';

const USAGE = `pier ${VERSION}: the cloud-native stack, from the chroot jail up

usage: pier <command> …

containers (served by pierd, started on demand):
  run, create, start, stop, restart, kill, rm, pause, unpause, wait
  ps, logs, exec, attach, inspect, stats, top, port, cp, events
  pod …, network …, volume …, system df|prune, daemon
images:
  images, tag, rmi, pull, push, build, login, logout, manifest …
other:
  runtime …     the OCI runtime (same as pier-runtime; see pier runtime --help)
  image …       images: ls, inspect, rm, tag, import, export, history, bootstrap, prune (see pier image --help)
  build …       build an image from a Containerfile (see pier build --help)
  push …        push an image to a registry (see pier push --help)
  pull …        pull an image from a registry (see pier pull --help)
  login …       log in to a registry (see pier login --help)
  logout HOST   forget the credentials stored for a registry
  manifest …    multi-platform images: create, add, inspect, push, rm (see pier manifest --help)
  registry …    an OCI distribution registry: serve, gc (see pier registry --help)
  version       print versions
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'runtime':
      return (await import('./runtime/main.ts')).runtimeMain(rest, 'pier runtime');
    case 'image':
      return (await import('./image/main.ts')).imageMain(rest);
    case 'build':
      return (await import('./build.ts')).buildMain(rest);
    case 'push':
      return (await import('./push.ts')).pushMain(rest);
    case 'pull':
      return (await import('./pull.ts')).pullMain(rest);
    case 'login':
      return (await import('./login.ts')).loginMain(rest);
    case 'manifest':
      return (await import('./manifest.ts')).manifestMain(rest);
    case 'logout':
      return (await import('./logout.ts')).logoutMain(rest);
    case 'registry':
      return (await import('./registry.ts')).registryMain(rest);
    case 'run': return (await import('./engine/run.ts')).runMain(rest);
    case 'create': return (await import('./engine/create.ts')).createMain(rest);
    case 'start': return (await import('./engine/start.ts')).startMain(rest);
    case 'ps': return (await import('./engine/ps.ts')).psMain(rest);
    case 'logs': return (await import('./engine/logs.ts')).logsMain(rest);
    case 'exec': return (await import('./engine/exec.ts')).execMain(rest);
    case 'attach': return (await import('./engine/attach.ts')).attachMain(rest);
    case 'inspect': return (await import('./engine/inspect.ts')).inspectMain(rest);
    case 'stats': return (await import('./engine/stats.ts')).statsMain(rest);
    case 'top': return (await import('./engine/top.ts')).topMain(rest);
    case 'port': return (await import('./engine/port.ts')).portMain(rest);
    case 'cp': return (await import('./engine/cp.ts')).cpMain(rest);
    case 'events': return (await import('./engine/events.ts')).eventsMain(rest);
    case 'network': return (await import('./engine/network.ts')).networkMain(rest);
    case 'pod': return (await import('./engine/pod.ts')).podMain(rest);
    case 'volume': return (await import('./engine/volume.ts')).volumeMain(rest);
    case 'system': return (await import('./engine/system.ts')).systemMain(rest);
    case 'daemon': return (await import('./engine/daemon.ts')).daemonMain(rest);
    case 'images': return (await import('./engine/images.ts')).imagesMain(rest);
    case 'tag': return (await import('./engine/images.ts')).tagMain(rest);
    case 'rmi': return (await import('./engine/images.ts')).rmiMain(rest);
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
      if (cmd && (await import('./engine/lifecycle.ts')).LIFECYCLE_VERBS.includes(cmd)) return (await import('./engine/lifecycle.ts')).lifecycleMain(cmd, rest);
      writeStderr(`pier: unknown command ${JSON.stringify(cmd)} (see pier --help)\n`);
      return 1;
  }
}

void main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
