/** The real pier-helper running real plans as root on the busybox rootfs. */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readlinkSync, rmSync, rmdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildCreatePlan } from '../../src/runtime/plan/create.ts';
import { startHelper } from '../../src/runtime/helper/index.ts';
import { PierError } from '../../src/common/errors.ts';
import type { Spec } from '../../src/runtime/spec.ts';
import { baseSpec, createInput, isRoot, runPlan } from './harness.ts';
import { busyboxRootfs } from '../helpers/rootfs.ts';

const sh = (script: string): Spec => baseSpec(['sh', '-c', script]);
const hostMounts = (): string => readFileSync('/proc/self/mountinfo', 'utf8');

describe('pier-helper', { skip: !isRoot && 'needs root' }, () => {
  it('runs the process as PID 1 with the hostname, readonly root and exit status', async () => {
    const before = hostMounts();
    const r = await runPlan(buildCreatePlan(createInput(sh('echo pid=$$; hostname; touch /x 2>&1; exit 3'))));
    assert.match(r.out, /^pid=1\npier\n/);
    assert.match(r.out, /Read-only file system/);
    assert.deepEqual(r.exit, { code: 3, signal: null });
    assert.ok(r.pid > 1 && r.pid !== process.pid);
    assert.equal(hostMounts(), before, 'no mount leaks into the host namespace');
  });

  it('mounts the configured filesystems, masks and readonly paths', async () => {
    const r = await runPlan(buildCreatePlan(createInput(sh('cat /proc/self/mountinfo; cat /sys/firmware/* 2>&1 | wc -c; echo x > /proc/sys/kernel/hostname 2>&1; true'))));
    const lines = r.out.split('\n');
    const at = (p: string): string[] => lines.filter((l) => l.split(' ')[4] === p);
    assert.match(at('/')[0], / ro[, ]/);
    assert.match(at('/proc')[0], / - proc /);
    assert.match(at('/dev/pts')[0], / - devpts /);
    assert.match(at('/sys')[0], / ro,.* - sysfs /);
    assert.match(at('/sys/fs/cgroup/memory')[0], / - cgroup cgroup .*memory/);
    assert.match(at('/sys/firmware')[0], / - tmpfs /, 'masked directory is an empty tmpfs');
    assert.match(at('/proc/sys')[0], /^\S+ \S+ \S+ \S+ \/proc\/sys ro,/);
    assert.match(r.out, /Read-only file system/);
    assert.deepEqual(r.exit, { code: 0, signal: null });
  });

  it('drops capabilities to the configured sets', async () => {
    const r = await runPlan(buildCreatePlan(createInput(sh('grep -E "^Cap(Eff|Bnd|Prm)" /proc/self/status; grep NoNewPrivs /proc/self/status'))));
    // CAP_KILL(5) | CAP_NET_BIND_SERVICE(10) | CAP_AUDIT_WRITE(29)
    assert.match(r.out, /CapPrm:\t0000000020000420/);
    assert.match(r.out, /CapEff:\t0000000020000420/);
    assert.match(r.out, /CapBnd:\t0000000020000420/);
    assert.match(r.out, /NoNewPrivs:\t1/);
  });

  it('resolves mount targets inside the rootfs: a symlink to /etc does not reach the host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pier-escape-'));
    const rootfs = join(dir, 'rootfs');
    try {
      execFileSync('cp', ['-a', busyboxRootfs(), rootfs]);
      symlinkSync('/etc', join(rootfs, 'evil'));
      symlinkSync('../../../../../../var', join(rootfs, 'evil2'));
      mkdirSync(join(dir, 'src'));
      writeFileSync(join(dir, 'src', 'content'), 'bound\n');
      const spec = sh('grep -E " /etc " /proc/self/mountinfo; ls /etc | wc -l; cat /var/content');
      spec.mounts!.push({ destination: '/evil', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
      spec.mounts!.push({ destination: '/evil2', type: 'bind', source: join(dir, 'src'), options: ['rbind', 'ro'] });
      const before = hostMounts();
      const r = await runPlan(buildCreatePlan(createInput(spec, { rootfs })));
      // both went to the rootfs: tmpfs on its /etc, the bind on its /var
      assert.match(r.out, / \/etc rw,.* - tmpfs /, 'the tmpfs landed on the rootfs /etc');
      assert.match(r.out, /\n0\nbound\n$/);
      assert.ok(!existsSync('/var/content'));
      assert.equal(hostMounts(), before);
      assert.match(readFileSync('/etc/group', 'utf8'), /^root:/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs in a user namespace with the given id mappings', async () => {
    // a private rootfs owned by the mapped root, as a user-namespaced container would have
    const dir = mkdtempSync(join(tmpdir(), 'pier-userns-'));
    const rootfs = join(dir, 'rootfs');
    try {
      execFileSync('cp', ['-a', busyboxRootfs(), rootfs]);
      execFileSync('chown', ['-R', '-h', '200000:200000', rootfs]);
      chmodSync(dir, 0o755);
      chmodSync(rootfs, 0o755);
      await userns(rootfs);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function userns(rootfs: string): Promise<void> {
    const spec = sh('cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox; grep CapEff /proc/self/status');
    spec.linux!.namespaces!.push({ type: 'user' });
    spec.linux!.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    spec.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    const r = await runPlan(buildCreatePlan(createInput(spec, { rootfs })));
    assert.match(r.out, /^\s+0\s+200000\s+65536\n\s+0\s+200000\s+65536\n0\n0\nCapEff:\t0000000020000420\n$/);
    assert.deepEqual(r.exit, { code: 0, signal: null });
  }

  it('reports a missing binary the way callers classify it', async () => {
    const h = startHelper(buildCreatePlan(createInput(baseSpec(['no-such-binary']))), { stdio: ['ignore', 'ignore', 'ignore'] });
    const pid = await h.pid;
    h.sendState('{}');
    h.go();
    await assert.rejects(h.ready, (e: unknown) => e instanceof PierError && e.message === 'exec: "no-such-binary": executable file not found in $PATH');
    assert.ok(pid > 0);
    assert.equal((await h.exit).code, 1);
  });

  it('names the op and path in a failure line', async () => {
    const spec = sh('true');
    spec.mounts!.push({ destination: '/mnt/x', type: 'nosuchfs', source: 'none' });
    const h = startHelper(buildCreatePlan(createInput(spec)), { stdio: ['ignore', 'ignore', 'ignore'] });
    await assert.rejects(h.ready, /^PierError: mount none on \/mnt\/x: No such device$/);
    await h.exit;
  });

  it('blocks on exec.fifo until it is opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pier-fifo-'));
    const fifo = join(dir, 'exec.fifo');
    const out = join(dir, 'out');
    const fd = openSync(out, 'w');
    try {
      execFileSync('mkfifo', ['-m', '0622', fifo]);
      const h = startHelper(buildCreatePlan(createInput(sh('echo started'), { fifoPath: fifo })), { stdio: ['ignore', fd, fd] });
      const pid = await h.pid;
      h.sendState('{}');
      h.go();
      await h.ready;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(readFileSync(out, 'utf8'), '', 'nothing ran before start');
      assert.match(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1], /^S /);
      assert.equal(readFileSync(fifo, 'utf8'), '0');
      assert.deepEqual(await h.exit, { code: 0, signal: null });
      assert.equal(readFileSync(out, 'utf8'), 'started\n');
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('forwards signals in wait mode and exits 128+n when the process is killed', async () => {
    const trap = await (async () => {
      const h = startHelper(buildCreatePlan(createInput(sh('trap "exit 7" TERM; sleep 20 & wait'))), { stdio: ['ignore', 'ignore', 'ignore'] });
      await h.pid; h.sendState('{}'); h.go(); await h.ready;
      await new Promise((r) => setTimeout(r, 200));
      h.kill('SIGTERM');
      return h.exit;
    })();
    assert.deepEqual(trap, { code: 7, signal: null });
    // PID 1 of a pid namespace cannot SIGKILL itself, so kill it from outside
    const h = startHelper(buildCreatePlan(createInput(sh('sleep 20'))), { stdio: ['ignore', 'ignore', 'ignore'] });
    const pid = await h.pid; h.sendState('{}'); h.go(); await h.ready;
    process.kill(pid, 'SIGKILL');
    assert.deepEqual(await h.exit, { code: 137, signal: null });
  });

  it('runs from a sealed memfd copy (CVE-2019-5736)', async () => {
    const h = startHelper(buildCreatePlan(createInput(sh('sleep 5'))), { stdio: ['ignore', 'ignore', 'ignore'] });
    const pid = await h.pid; h.sendState('{}'); h.go(); await h.ready;
    try {
      assert.match(readlinkSync(`/proc/${h.helperPid}/exe`), /^\/memfd:pier-helper/);
      // F_GET_SEALS (1034): seal, shrink, grow and write must all be set
      const seals = execFileSync('python3', ['-c', 'import fcntl,os,sys; print(fcntl.fcntl(os.open(sys.argv[1], os.O_RDONLY), 1034))',
        `/proc/${h.helperPid}/exe`], { encoding: 'utf8' });
      assert.equal(Number(seals) & 0xf, 0xf);
    } finally {
      process.kill(pid, 'SIGKILL'); // the helper then exits with 137
      assert.deepEqual(await h.exit, { code: 137, signal: null });
    }
  });

  it('writes the child into the given cgroup.procs before it runs', async () => {
    const cg = `/sys/fs/cgroup/pids/pier-test-${process.pid}`;
    mkdirSync(cg);
    try {
      const r = await runPlan(buildCreatePlan(createInput(sh('cat /proc/self/cgroup'), { cgroupProcs: [`${cg}/cgroup.procs`] })));
      assert.match(r.out, /:pids:\/\n/, 'the cgroup namespace is rooted at the container cgroup');
      assert.match(readFileSync(`${cg}/pids.events`, 'utf8'), /max 0/);
      assert.ok(readFileSync(`${cg}/pids.peak`, 'utf8').trim() !== '0', 'processes were counted in the cgroup');
    } finally {
      for (let i = 0; i < 50; i++) {
        try { rmdirSync(cg); break; } catch { await new Promise((r) => setTimeout(r, 20)); }
      }
    }
  });
});
