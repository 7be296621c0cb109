/** v2 pids.max/pids.current are the same files, with the same format, as v1. */
export { pids } from '../v1/pids.ts';
