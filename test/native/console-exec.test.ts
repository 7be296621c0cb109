/** Terminals (console socket and relay), hooks, and exec into a running container, through the real helper. */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildCreatePlan } from '../../src/runtime/plan/create.ts';
import { buildExecPlan } from '../../src/runtime/plan/exec.ts';
import { startHelper } from '../../src/runtime/helper/index.ts';
import { PierError } from '../../src/common/errors.ts';
import { baseSpec, createInput, isRoot, mask, runPlan } from './harness.ts';

// Node cannot receive SCM_RIGHTS, so a tiny python3 listener plays the caller (conmon's role):
// it takes the pty master and copies what the container writes to its stdout.
const RECEIVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 256, 1)
print("name", msg.decode(), "fds", len(fds), flush=True)
while True:
    try: b = os.read(fds[0], 4096)
    except OSError: break
    if not b: break
    sys.stdout.write(b.decode(errors="replace")); sys.stdout.flush()
`;

describe('pier-helper terminals, hooks and exec', { skip: !isRoot && 'needs root' }, () => {
  it('sends a pty master to the console socket and makes it the controlling terminal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pier-console-'));
    const sock = join(dir, 'console.sock');
    const py = spawn('python3', ['-c', RECEIVER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let got = '';
    py.stdout.setEncoding('utf8');
    const pyDone = new Promise<void>((resolve) => py.on('exit', () => resolve()));
    try {
      await new Promise<void>((resolve) => py.stdout.on('data', (d: string) => { got += d; if (got.includes('listening')) resolve(); }));
      const spec = baseSpec(['sh', '-c', 'tty; stty size; echo fd0=$(readlink /proc/self/fd/0)']);
      spec.process!.terminal = true;
      spec.process!.consoleSize = { height: 33, width: 101 };
      const r = await runPlan(buildCreatePlan(createInput(spec, { consoleSocket: sock })));
      assert.deepEqual(r.exit, { code: 0, signal: null });
      await pyDone;
      assert.match(got, /name \/dev\/pts\/0 fds 1/);
      assert.match(got, /\/dev\/pts\/0\r\n33 101\r\nfd0=\/dev\/pts\/0\r\n/);
    } finally {
      py.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('relays its own stdio to the pty when there is no console socket (run -t)', async () => {
    const spec = baseSpec(['sh', '-c', 'tty; echo relayed; exit 4']);
    spec.process!.terminal = true;
    const r = await runPlan(buildCreatePlan(createInput(spec, { consoleSocket: '-' })));
    assert.match(r.out, /^\/dev\/pts\/0\r\nrelayed\r\n$/);
    assert.deepEqual(r.exit, { code: 4, signal: null });
  });

  it('runs createContainer and startContainer hooks with the state on stdin, and fails on a failing hook', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pier-hooks-'));
    try {
      const log = join(dir, 'log');
      const hook = join(dir, 'hook.sh');
      writeFileSync(hook, `#!/bin/sh\nread -r state\necho "$1 $HOOKVAR $state" >> ${log}\n`);
      chmodSync(hook, 0o755);
      const spec = baseSpec(['true']);
      // startContainer runs after pivot_root, so it uses the rootfs's busybox sh
      spec.hooks = {
        createContainer: [{ path: hook, args: ['hook', 'create'], env: ['HOOKVAR=v1'] }],
        startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'read -r s; echo "start $s" > /dev/null'] }],
      };
      const r = await runPlan(buildCreatePlan(createInput(spec)));
      assert.deepEqual(r.exit, { code: 0, signal: null });
      assert.match(readFileSync(log, 'utf8'), /^create v1 \{"ociVersion":"1\.2\.0","id":"x","status":"creating"/);

      spec.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo broken >&2; exit 2'] }] };
      const h = startHelper(buildCreatePlan(createInput(spec)), { stdio: ['ignore', 'ignore', 'ignore'] });
      await h.pid; h.sendState('{}'); h.go();
      await assert.rejects(h.ready, (e: unknown) => e instanceof PierError && e.message === 'hook /bin/sh: exit status 2: broken');

      spec.hooks = { createContainer: [{ path: '/bin/sleep', args: ['sleep', '10'], timeout: 1 }] };
      const t = startHelper(buildCreatePlan(createInput(spec)), { stdio: ['ignore', 'ignore', 'ignore'] });
      await t.pid; t.sendState('{}'); t.go();
      await assert.rejects(t.ready, /hook \/bin\/sleep: timed out after 1 s/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('execs a process into the namespaces of a running container', async () => {
    const init = startHelper(buildCreatePlan(createInput(baseSpec(['sleep', '30']))), { stdio: ['ignore', 'ignore', 'ignore'] });
    const pid = await init.pid;
    init.sendState('{}'); init.go();
    await init.ready;
    try {
      const nsPaths = ['ipc', 'uts', 'net', 'pid', 'cgroup', 'mnt'].map((t) => ({ type: t, path: `/proc/${pid}/ns/${t}` }));
      const proc = { ...baseSpec().process!, args: ['sh', '-c', 'hostname; echo pid=$$; ps -o pid,comm | grep -c sleep; grep CapEff /proc/self/status; id -G; exit 5'],
        cwd: '/tmp', user: { uid: 0, gid: 0, additionalGids: [5] } };
      const r = await runPlan(buildExecPlan({ pid, process: proc, nsPaths, cgroupProcs: [], preserveFds: 0, mode: 'wait',
        capMasks: { bounding: mask(['CAP_KILL']), effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n }, rlimits: [] }));
      assert.match(r.out, /^pier\npid=\d+\n1\nCapEff:\t0000000000000000\n0 5\n$/);
      assert.doesNotMatch(r.out, /pid=1\n/);
      assert.deepEqual(r.exit, { code: 5, signal: null });

      const missing = startHelper(buildExecPlan({ pid, process: { ...proc, args: ['nope'] }, nsPaths, cgroupProcs: [], preserveFds: 0,
        mode: 'detach', capMasks: { bounding: 0n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n }, rlimits: [] }),
      { stdio: ['ignore', 'ignore', 'ignore'] });
      await assert.rejects(missing.ready, /exec: "nope": executable file not found in \$PATH/);
    } finally {
      process.kill(pid, 'SIGKILL');
      await init.exit;
    }
  });
});
