/** .dockerignore matching (docker semantics). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerIgnore } from '../../src/image/build/index.ts';

test('patterns, parents, ** and ! exceptions', () => {
  const d = new DockerIgnore([
    '# comment',
    '',
    '/node_modules',
    '*.log',
    '**/*.tmp',
    'docs/**',
    '!docs/keep.md',
    'secret?.txt',
    'build/[ab]*',
    './dist/',
  ].join('\n'));
  assert.equal(d.excluded('node_modules'), true);
  assert.equal(d.excluded('node_modules/x/y.js'), true, 'a matched dir excludes its subtree');
  assert.equal(d.excluded('sub/node_modules'), false, 'patterns are anchored at the context');
  assert.equal(d.excluded('a.log'), true);
  assert.equal(d.excluded('sub/a.log'), false, '* does not cross /');
  assert.equal(d.excluded('x.tmp'), true, '**/ may match no directory');
  assert.equal(d.excluded('a/b/c/x.tmp'), true);
  assert.equal(d.excluded('docs/guide.md'), true);
  assert.equal(d.excluded('docs/keep.md'), false, 'an exception wins when it comes later');
  assert.equal(d.mayIncludeUnder('docs'), true);
  assert.equal(d.mayIncludeUnder('node_modules'), false);
  assert.equal(d.excluded('secret1.txt'), true);
  assert.equal(d.excluded('secret12.txt'), false);
  assert.equal(d.excluded('build/apple'), true);
  assert.equal(d.excluded('build/cherry'), false);
  assert.equal(d.excluded('dist/app.js'), true);
  assert.equal(d.excluded('src/main.ts'), false);
});

test('the last matching pattern wins', () => {
  const d = new DockerIgnore('!a.txt\n*.txt\n');
  assert.equal(d.excluded('a.txt'), true);
  const e = new DockerIgnore('*.txt\n!a.txt\n');
  assert.equal(e.excluded('a.txt'), false);
  assert.equal(e.excluded('b.txt'), true);
  assert.equal(new DockerIgnore('').excluded('anything'), false);
});
