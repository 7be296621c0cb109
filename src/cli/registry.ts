/**
 * `pier registry …`: `serve --listen HOST:PORT --storage DIR` runs the distribution-spec registry
 * until SIGINT/SIGTERM; `gc [--dry-run] [--grace SECONDS] --storage DIR` collects unreferenced blobs.
 */
import { writeStderr, writeStdout } from '../common/log.ts';
import { PierError, messageOf } from '../common/errors.ts';
import { gcRegistry, startRegistry } from '../registry/index.ts';
import { bool, int, parseFlags, str } from './args.ts';

const USAGE = `usage: pier registry <command> [flags]

commands:
  serve --listen HOST:PORT --storage DIR     serve the OCI distribution API (plain HTTP)
  gc [--dry-run] [--grace SECONDS] --storage DIR
                                             delete blobs no manifest references (blobs touched in
                                             the last --grace seconds, default 600, are kept)
`;

async function serve(argv: string[]): Promise<number> {
  const p = parseFlags(argv, [{ name: 'listen', value: true }, { name: 'storage', value: true }], { what: 'registry serve' });
  const listen = str(p, 'listen') ?? '127.0.0.1:5000';
  const storage = str(p, 'storage');
  if (!storage) throw new PierError('registry serve: --storage is required');
  if (p.rest.length) throw new PierError(`registry serve: unexpected argument ${JSON.stringify(p.rest[0])}`);
  const reg = await startRegistry({ listen, storage });
  writeStdout(`pier registry listening on ${reg.url} (storage ${storage})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => { void reg.close().then(resolve); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

async function gc(argv: string[]): Promise<number> {
  const p = parseFlags(argv, [{ name: 'storage', value: true }, { name: 'dry-run' }, { name: 'grace', value: true }], { what: 'registry gc' });
  const storage = str(p, 'storage');
  if (!storage) throw new PierError('registry gc: --storage is required');
  const grace = int(p, 'grace', 'registry gc');
  if (grace !== undefined && grace < 0) throw new PierError('registry gc: --grace must not be negative');
  const dryRun = bool(p, 'dry-run');
  const r = await gcRegistry({ storage, dryRun, graceMs: grace === undefined ? undefined : grace * 1000 });
  for (const d of r.swept) writeStdout(`${dryRun ? 'would delete' : 'deleted'} ${d}\n`);
  writeStdout(`${r.marked} blobs referenced; ${r.swept.length} ${dryRun ? 'would be deleted' : 'deleted'} (${r.bytes} bytes); ${r.kept.length} unreferenced kept (younger than the grace period); ${r.staleUploads.length} abandoned upload sessions ${dryRun ? 'would be ' : ''}removed\n`);
  return 0;
}

export async function registryMain(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve': return await serve(rest);
      case 'gc': return await gc(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        writeStdout(USAGE);
        return cmd === undefined ? 1 : 0;
      default:
        throw new PierError(`registry: unknown command ${JSON.stringify(cmd)} (see pier registry --help)`);
    }
  } catch (err) {
    writeStderr(`pier: ${messageOf(err)}\n`);
    return err instanceof PierError ? err.exitCode : 1;
  }
}
