/**
 * Node built-ins loaded on first use. Every CLI call pays for what it loads at start-up, and
 * child_process drags in net, dgram and streams (a few ms) that state/kill/delete never need.
 */
export function childProcess(): typeof import('node:child_process') {
  return process.getBuiltinModule('node:child_process');
}
