import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateSpec, validateId, parseSpec } from '../../src/runtime/validate.ts';
import { baseSpec } from '../helpers/rootfs.ts';
import type { Spec } from '../../src/runtime/spec.ts';

const ok = () => baseSpec(['true']);
function mutate(f: (s: Spec) => void): Spec {
  const s = ok();
  f(s);
  return s;
}

test('the base spec is valid', () => {
  validateSpec(ok());
});

test('ids follow runc rules', () => {
  assert.equal(validateId('a.b_c-1+2'), 'a.b_c-1+2');
  assert.throws(() => validateId(''), /container id cannot be empty/);
  assert.throws(() => validateId('a/b'), /invalid container id format: a\/b/);
  assert.throws(() => validateId('..'), /invalid container id/);
});

test('each bad field is named', () => {
  const cases: [(s: Spec) => void, RegExp][] = [
    [(s) => { s.ociVersion = '0.9'; }, /ociVersion/],
    [(s) => { delete s.process; }, /process must be set/],
    [(s) => { s.process!.args = []; }, /process.args must not be empty/],
    [(s) => { s.process!.cwd = 'rel'; }, /process.cwd "rel" must be an absolute path/],
    [(s) => { s.process!.env = ['NOEQUALS']; }, /KEY=value/],
    [(s) => { s.process!.oomScoreAdj = 5000; }, /oomScoreAdj/],
    [(s) => { s.linux!.namespaces!.push({ type: 'pid' }); }, /duplicate namespace pid/],
    [(s) => { s.linux!.namespaces!.push({ type: 'bogus' as never }); }, /unknown namespace type "bogus"/],
    [(s) => { s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'uts'); }, /hostname is set but there is no private UTS/],
    [(s) => { s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }, /need a user namespace/],
    [(s) => { s.linux!.namespaces!.push({ type: 'user' }); }, /needs linux.uidMappings/],
    [(s) => { s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' }; s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network'); }, /host's network namespace/],
    [(s) => { s.linux!.sysctl = { 'vm.swappiness': '1' }; }, /sysctl "vm.swappiness"/],
    [(s) => { s.mounts!.push({ destination: 'relative', type: 'tmpfs', source: 'tmpfs' }); }, /mounts\[7\].destination "relative" must be an absolute path/],
    [(s) => { s.hooks = { prestart: [{ path: 'rel' }] }; }, /hooks.prestart\[0\].path/],
    [(s) => { s.linux!.namespaces!.push({ type: 'network', path: '/nonexistent/ns' } as never); }, /duplicate namespace network/],
    [(s) => { s.linux!.namespaces = [{ type: 'network', path: '/nonexistent/ns' }, { type: 'uts' }]; }, /network namespace path \/nonexistent\/ns does not exist/],
    [(s) => { s.linux!.rootfsPropagation = 'sideways'; }, /rootfsPropagation/],
    [(s) => { s.linux!.intelRdt = {}; }, /intelRdt is not supported/],
  ];
  for (const [f, re] of cases) assert.throws(() => validateSpec(mutate(f)), re);
});

test('allowed sysctls pass with their namespace', () => {
  validateSpec(mutate((s) => { s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000', 'fs.mqueue.msg_max': '10' }; }));
});

test('parseSpec names the file on a syntax error', () => {
  assert.throws(() => parseSpec('{', '/b/config.json'), /\/b\/config.json: invalid JSON/);
  assert.throws(() => parseSpec('[]', '/b/config.json'), /must be a JSON object/);
});
