import { writeStderr } from '../common/log.ts';
import { PierError, messageOf } from '../common/errors.ts';

/**
 * How every pier command fails: one line `pier: [what: ]message` on stderr (the stack too with
 * --debug when it is a bug rather than a PierError), and the exit status to return.
 */
export function reportError(err: unknown, opts: { what?: string; debug?: boolean } = {}): number {
  writeStderr(`pier: ${opts.what ? `${opts.what}: ` : ''}${messageOf(err).split('\n')[0]}\n`);
  if (opts.debug && !(err instanceof PierError) && err instanceof Error && err.stack) writeStderr(err.stack + '\n');
  return err instanceof PierError ? err.exitCode : 1;
}
