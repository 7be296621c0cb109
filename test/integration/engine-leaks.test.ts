/**
 * No leaks: 200 `pier run --rm` cycles on the default bridge leave no netns, veth, iptables rule,
 * cgroup, mount, runtime state or container record behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { bridgePorts, iptablesRules, mountsUnder, pierNetns, testEngine, type TestEngine } from '../helpers/engine.ts';
import { cgroupDirsMatching } from '../helpers/pier.ts';

let e: TestEngine;
before(() => { e = testEngine(); });
after(async () => { await e.close(); });

const CYCLES = Number(process.env.PIER_LEAK_CYCLES ?? 200);

test(`${CYCLES} run --rm cycles leave nothing behind`, { timeout: 600_000 }, async () => {
  // One run first so the daemon, bridge and per-network rules exist before the baseline.
  e.ok(['run', '--rm', 'busybox', 'true']);
  const rules = iptablesRules();
  const netns = pierNetns();
  const mounts = mountsUnder(e.root);
  const cgroups = cgroupDirsMatching(/^[0-9a-f]{64}$/);
  for (let i = 0; i < CYCLES; i++) {
    // Alternate plain runs and runs with a published port (portmap rules) and a volume.
    const args = i % 4 === 3 ? ['run', '--rm', '-p', `${20000 + i}:80`, '-v', '/data', 'busybox', 'true'] : ['run', '--rm', 'busybox', 'true'];
    const r = await e.pierAsync(args);
    assert.equal(r.status, 0, `cycle ${i}: ${r.stderr}`);
  }
  assert.deepEqual(iptablesRules(), rules, 'iptables rules');
  assert.deepEqual(pierNetns(), netns, 'network namespaces');
  assert.deepEqual(bridgePorts(e.bridge), [], 'veths on the bridge');
  assert.deepEqual(mountsUnder(e.root), mounts, 'mounts');
  assert.deepEqual(cgroupDirsMatching(/^[0-9a-f]{64}$/), cgroups, 'cgroups');
  assert.deepEqual(readdirSync(join(e.root, 'containers')), [], 'container records');
  const rt = join(e.run, 'runtime');
  assert.deepEqual(existsSync(rt) ? readdirSync(rt) : [], [], 'runtime state');
  assert.deepEqual(readdirSync(join(e.root, 'volumes')).filter((v) => !v.startsWith('.')), [], 'anonymous volumes');
});
