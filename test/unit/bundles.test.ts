/**
 * The bundle every `pier run` loads first (dist/pier-client.cjs, see src/cli/pier-client.ts) holds
 * only the commands that talk to pierd: an import that drags in the image store or the registry
 * client costs each container start ~5 ms (measured when a dynamic import did exactly that).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TOP } from '../helpers/pier.ts';

test('pier-client.cjs stays small: no image store, no registry client', () => {
  const path = join(TOP, 'dist', 'pier-client.cjs');
  const text = readFileSync(path, 'utf8');
  for (const cls of ['ImageService = class', 'ContentStore = class', 'RegistryClient = class']) {
    assert.equal(text.includes(cls), false, `${cls} is in ${path}`);
  }
  assert.ok(statSync(path).size < 150_000, `${path} is ${statSync(path).size} bytes`);
  // and the full bundle does have them (the check above would pass on an empty file otherwise)
  const full = readFileSync(join(TOP, 'dist', 'pier.cjs'), 'utf8');
  for (const cls of ['ImageService = class', 'RegistryClient = class']) assert.ok(full.includes(cls), cls);
});
