/** The shape of one pier-runtime command: its flags and what it does. */
import type { FlagSpec, Parsed } from '../args.ts';
import type { Runtime } from '../../runtime/index.ts';
import type { Logger } from '../../common/log.ts';
import { PierError } from '../../common/errors.ts';

export interface CommandContext {
  rt: Runtime;
  log: Logger;
  root: string;
}

export interface Command {
  name: string;
  usage: string;
  flags: FlagSpec[];
  /** Returns the exit status. */
  run(ctx: CommandContext, p: Parsed): Promise<number> | number;
}

/** The container id: the first positional argument, required. */
export function idArg(p: Parsed, cmd: string): string {
  const id = p.rest[0];
  if (!id) throw new PierError(`${cmd}: container id cannot be empty (usage: pier-runtime ${cmd} <container-id>)`);
  return id;
}
