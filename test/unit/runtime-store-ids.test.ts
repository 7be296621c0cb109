/**
 * The runtime's container store turns ids into paths in one place, and refuses any id that is not
 * runc's shape there: `delete --force ../victim` once removed a directory beside the state root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerStore } from '../../src/runtime/state.ts';

test('an id that climbs out of the root is refused before any path is made of it', () => {
  const top = mkdtempSync(join(tmpdir(), 'pier-store-ids-'));
  const root = join(top, 'root');
  mkdirSync(root);
  mkdirSync(join(top, 'victim'));
  const store = new ContainerStore(root);
  for (const id of ['../victim', '..', '.', 'a/b', '', '/abs']) {
    assert.throws(() => store.remove(id), /container id/, JSON.stringify(id));
    assert.throws(() => store.dir(id), /container id/, JSON.stringify(id));
  }
  assert.ok(existsSync(join(top, 'victim')), 'the directory beside the root is still there');
  assert.equal(store.dir('ok-id_1.2'), join(root, 'ok-id_1.2'));
});
