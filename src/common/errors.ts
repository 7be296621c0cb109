/**
 * PierError carries a message meant for the user: one line, saying what was wrong.
 * Anything else thrown is a bug and is reported with its stack under --debug.
 */
export class PierError extends Error {
  /** Process exit status the CLI uses for this error. */
  readonly exitCode: number;
  constructor(message: string, options?: { exitCode?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PierError';
    this.exitCode = options?.exitCode ?? 1;
  }
}

/** The errno name of a Node system error ("ENOENT"), or undefined. */
export function errnoOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

/** A message for any thrown value, without the stack. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
