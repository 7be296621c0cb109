/**
 * Loads compiled seccomp programs into the real kernel (in a child process built from a tiny C
 * program at test time) to prove the kernel accepts them and enforces what the compiler meant.
 * Needs gcc; runs as root so that syscalls the filter blocks would otherwise succeed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileSeccomp, defaultSeccompProfile } from '../../src/runtime/seccomp/index.ts';
import type { Seccomp } from '../../src/runtime/spec.ts';

const LOADER_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, long rc) { printf("%s=%ld\n", what, rc < 0 ? -(long)errno : rc); fflush(stdout); }
#define REPORT(call) do { errno = 0; long rc_ = (call); report(op, rc_); } while (0)

/* usage: loader PROGRAM FLAGS OP... ; OPs: mkdir:PATH:MODE  mount  unshare:FLAGS  getpid  personality:N */
int main(int argc, char **argv) {
  static unsigned char buf[4096 * 8];
  int fd = open(argv[1], O_RDONLY);
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  struct sock_fprog prog = { .len = (unsigned short)(n / 8), .filter = (struct sock_filter *)buf };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("nnp"); return 2; }
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, strtoul(argv[2], 0, 0), &prog) != 0) {
    printf("load=%d\n", -errno); return 3;
  }
  printf("load=0\n"); fflush(stdout);
  for (int i = 3; i < argc; i++) {
    char *op = argv[i];
    if (!strncmp(op, "mkdir:", 6)) {
      char *path = op + 6, *m = strrchr(path, ':');
      /* the raw mkdir syscall, so the mode is argument 1 whatever libc prefers */
      unsigned long mode = strtoul(m + 1, 0, 8);
      *m = 0; errno = 0; long rc = syscall(SYS_mkdir, path, mode); *m = ':'; report(op, rc);
    } else if (!strcmp(op, "mount")) {
      REPORT(mount("none", "/tmp", "tmpfs", 0, 0));
    } else if (!strncmp(op, "unshare:", 8)) {
      REPORT(unshare((int)strtoul(op + 8, 0, 0)));
    } else if (!strcmp(op, "getpid")) {
      REPORT(syscall(SYS_getpid) > 0 ? 0 : -1);
    } else if (!strncmp(op, "personality:", 12)) {
      REPORT(syscall(SYS_personality, strtoul(op + 12, 0, 0)) < 0 ? -1 : 0);
    }
  }
  return 0;
}
`;

const hasGcc = spawnSync('gcc', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;
const skip = !hasGcc ? 'gcc not available' : !isRoot ? 'needs root' : false;

let dir = '';
let loader = '';

before(() => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'pier-seccomp-'));
  writeFileSync(join(dir, 'loader.c'), LOADER_C);
  loader = join(dir, 'loader');
  execFileSync('gcc', ['-O1', '-Wall', '-o', loader, join(dir, 'loader.c')]);
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

let runs = 0;
/** Loads `profile` in a fresh child and runs ops; returns stdout lines as a map, plus the exit signal. */
function load(profile: Seccomp, ops: string[]): { out: Record<string, string>; signal: NodeJS.Signals | null; status: number | null } {
  const { program, flags } = compileSeccomp(profile);
  const file = join(dir, `prog-${runs++}.bpf`);
  writeFileSync(file, program);
  const r = spawnSync(loader, [file, String(flags), ...ops], { encoding: 'utf8' });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [k, v] = line.split('=');
    out[k] = v;
  }
  return { out, signal: r.signal, status: r.status };
}

const EPERM = '-1';
const EACCES = '-13';

test('ERRNO with errnoRet on one syscall, others allowed', { skip }, () => {
  const p = join(dir, 'a');
  const r = load(
    { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] },
    [`mkdir:${p}:755`, 'getpid'],
  );
  assert.deepEqual(r.out, { load: '0', [`mkdir:${p}:755`]: EACCES, getpid: '0' });
  assert.equal(existsSync(p), false);
});

test('argument conditions are enforced by the kernel', { skip }, () => {
  const [p1, p2, p3] = ['b1', 'b2', 'b3'].map((x) => join(dir, x));
  const r = load(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0o700, op: 'SCMP_CMP_EQ' }] },
        // OR with a second rule; a GT on a value whose high half is zero must not catch small modes.
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 1, value: 0o1000, op: 'SCMP_CMP_GE' }] },
      ],
    },
    [`mkdir:${p1}:700`, `mkdir:${p2}:755`, `mkdir:${p3}:1755`],
  );
  assert.deepEqual(r.out, { load: '0', [`mkdir:${p1}:700`]: EPERM, [`mkdir:${p2}:755`]: '0', [`mkdir:${p3}:1755`]: EACCES });
  assert.equal(existsSync(p2), true);
});

test('the default profile loads and blocks mount and namespace creation even for root', { skip }, () => {
  const p = join(dir, 'c');
  const ops = [`mkdir:${p}:755`, 'mount', 'unshare:0x10000000', 'unshare:0x200', 'getpid', 'personality:0x40000', 'personality:0xffffffff'];
  const r = load(defaultSeccompProfile(), ops);
  assert.deepEqual(r.out, {
    load: '0',
    [`mkdir:${p}:755`]: '0',
    mount: EPERM,
    'unshare:0x10000000': EPERM, // CLONE_NEWUSER
    'unshare:0x200': '0', // CLONE_FS: no namespace
    getpid: '0',
    'personality:0x40000': EPERM, // ADDR_NO_RANDOMIZE
    'personality:0xffffffff': '0',
  });
});

test('a KILL_PROCESS rule kills the child with SIGSYS', { skip }, () => {
  const r = load({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_KILL_PROCESS' }] }, ['getpid', 'mount', 'getpid']);
  assert.deepEqual(r.out, { load: '0', getpid: '0' });
  assert.equal(r.signal, 'SIGSYS');
});

test('all three filter flags are accepted', { skip }, () => {
  const r = load(
    { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'], syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO' }] },
    ['mount', 'getpid'],
  );
  assert.deepEqual(r.out, { load: '0', mount: EPERM, getpid: '0' });
});

test('a long program with JA trampolines is accepted and correct', { skip }, () => {
  const p = join(dir, 'e');
  const r = load(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        ...Array.from({ length: 200 }, (_, i) => ({
          names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: 0x1000_0000 + i, op: 'SCMP_CMP_EQ' }],
        })),
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      ],
    },
    ['unshare:0x10000000', `mkdir:${p}:755`],
  );
  assert.deepEqual(r.out, { load: '0', 'unshare:0x10000000': EPERM, [`mkdir:${p}:755`]: EACCES });
});
