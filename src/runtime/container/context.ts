/** What every container operation is handed: the store for its --root and the logger. */
import type { Logger } from '../../common/log.ts';
import type { ContainerStore } from '../state.ts';

export interface RuntimeContext {
  store: ContainerStore;
  log: Logger;
}

/** stdio for the container (or an exec'd process): fds, or 'inherit' to pass ours untouched. */
export type Stdio = 'inherit' | [number | 'ignore' | 'inherit', number | 'ignore' | 'inherit', number | 'ignore' | 'inherit'];
