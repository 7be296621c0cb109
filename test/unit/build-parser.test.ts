/** The Containerfile parser and the substitution rules (no root needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { healthcheckOf, parseContainerfile, processWord, processWords, keyValues } from '../../src/image/build/index.ts';

const vars = new Map([['A', 'apple'], ['E', ''], ['SP', 'two words']]);

test('every instruction parses, with its line, flags and form', () => {
  const cf = parseContainerfile([
    '# syntax=docker/dockerfile:1',
    'ARG BASE=busybox',
    'FROM --platform=linux/amd64 $BASE AS Build',
    'RUN echo hi',
    'RUN ["echo", "exec"]',
    'COPY --from=0 --chown=1:2 --chmod=644 a b /dst/',
    'ADD ["x y", "/z"]',
    'ENV K=v K2="v 2"',
    'ARG X',
    'WORKDIR /w',
    'USER nobody',
    'CMD ["sh"]',
    'ENTRYPOINT exec sh',
    'EXPOSE 80/tcp',
    'LABEL a=b',
    'VOLUME ["/v"]',
    'SHELL ["/bin/sh", "-ec"]',
    'STOPSIGNAL SIGTERM',
    'FROM build',
  ].join('\n'), 'Dockerfile');
  assert.equal(cf.metaArgs.length, 1);
  assert.equal(cf.stages.length, 2);
  const [s0, s1] = cf.stages;
  assert.equal(s0.name, 'build');
  assert.deepEqual(s0.from.flags, { platform: 'linux/amd64' });
  assert.equal(s0.from.line, 3);
  const kinds = s0.instructions.map((i) => i.kind);
  assert.deepEqual(kinds, ['RUN', 'RUN', 'COPY', 'ADD', 'ENV', 'ARG', 'WORKDIR', 'USER', 'CMD', 'ENTRYPOINT', 'EXPOSE', 'LABEL', 'VOLUME', 'SHELL', 'STOPSIGNAL']);
  assert.equal(s0.instructions[0].json, undefined);
  assert.deepEqual(s0.instructions[1].json, ['echo', 'exec']);
  assert.deepEqual(s0.instructions[2].flags, { from: '0', chown: '1:2', chmod: '644' });
  assert.equal(s0.instructions[2].args, 'a b /dst/');
  assert.deepEqual(s0.instructions[3].json, ['x y', '/z']);
  assert.equal(s0.instructions[12].kind, 'VOLUME');
  assert.equal(s0.instructions[12].line, 16);
  assert.equal(s1.from.args, 'build');
});

test('continuations, comments inside them, blank lines and the escape directive', () => {
  const cf = parseContainerfile('FROM scratch\nRUN echo a \\\n# a comment in the middle\n\n  && echo b\nCMD x\n');
  const run = cf.stages[0].instructions[0];
  assert.equal(run.args, 'echo a   && echo b');
  assert.equal(run.line, 2);
  assert.equal(cf.stages[0].instructions[1].line, 6);
  const bt = parseContainerfile('# escape=`\nFROM scratch\nRUN dir c:\\ `\n  more\n');
  assert.equal(bt.escape, '`');
  assert.equal(bt.stages[0].instructions[0].args, 'dir c:\\   more');
  // A directive after the first comment is just a comment.
  assert.equal(parseContainerfile('# hello\n# escape=`\nFROM scratch\n').escape, '\\');
});

test('errors name the file, line and instruction', () => {
  const bad: [string, RegExp][] = [
    ['FROM a\nFOO bar\n', /^Containerfile:2: unknown instruction "FOO"$/],
    ['RUN x\n', /^Containerfile:1: RUN: only ARG may come before the first FROM$/],
    ['FROM a\nCOPY onlyone\n', /^Containerfile:2: COPY: needs a source and a destination$/],
    ['FROM a\nCOPY --bogus=1 a b\n', /^Containerfile:2: COPY: unknown flag --bogus$/],
    ['FROM a\nRUN --mount=type=cache,target=/x true\n', /^Containerfile:2: RUN: --mount is not supported by pier build$/],
    ['FROM a\nRUN <<EOF\necho\nEOF\n', /^Containerfile:2: RUN: heredocs \(<<EOF\) are not supported by pier build$/],
    ['FROM a\n\nSHELL sh -c\n', /^Containerfile:3: SHELL: needs a JSON array/],
    ['FROM a\nHEALTHCHECK true\n', /^Containerfile:2: HEALTHCHECK: unknown type "true" \(use CMD or NONE\)$/],
    ['FROM a\nHEALTHCHECK CMD\n', /^Containerfile:2: HEALTHCHECK: CMD needs a command$/],
    ['FROM a\nHEALTHCHECK NONE x\n', /^Containerfile:2: HEALTHCHECK: NONE takes no arguments$/],
    ['FROM a\nHEALTHCHECK --interval=5s NONE\n', /^Containerfile:2: HEALTHCHECK: NONE takes no flags$/],
    ['FROM a\nHEALTHCHECK --interval=5 CMD true\n', /^Containerfile:2: HEALTHCHECK: --interval=5: expected a duration/],
    ['FROM a\nHEALTHCHECK --timeout=10us CMD true\n', /^Containerfile:2: HEALTHCHECK: --timeout=10us: must be 0 or at least 1ms$/],
    ['FROM a\nHEALTHCHECK --retries=-1 CMD true\n', /^Containerfile:2: HEALTHCHECK: --retries=-1: expected a whole number >= 0$/],
    ['FROM a\nHEALTHCHECK --bogus=1 CMD true\n', /^Containerfile:2: HEALTHCHECK: unknown flag --bogus$/],
    ['FROM a\nONBUILD RUN x\n', /^Containerfile:2: ONBUILD: /],
    ['FROM a AS x\nFROM b AS x\n', /^Containerfile:2: FROM: duplicate stage name "x"$/],
    ['FROM a b c d\n', /^Containerfile:1: FROM: expected "FROM image" or "FROM image AS name"$/],
    ['FROM a\nENV\n', /^Containerfile:2: ENV: needs at least one argument$/],
    ['FROM a\nLABEL novalue\n', /^Containerfile:2: LABEL: expected key=value$/],
    ['FROM a\nARG 1x\n', /^Containerfile:2: ARG: invalid name "1x"$/],
    ['# only comments\n', /^Containerfile:1: no FROM instruction$/],
    ['# escape=x\nFROM a\n', /^Containerfile:1: invalid escape directive "x"/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseContainerfile(text), (e: Error) => re.test(e.message), text);
});

test('substitution forms', () => {
  assert.equal(processWord('$A-${A}', vars), 'apple-apple');
  assert.equal(processWord('${NOPE:-dflt} ${E:-empty} ${E-set}', vars), 'dflt empty ');
  assert.equal(processWord('${A:+x} ${NOPE:+x} ${E+y}', vars), 'x  y');
  assert.equal(processWord("'$A' \"$A\" \\$A", vars), '$A apple $A');
  assert.equal(processWord('${NOPE:-${A}}', vars), 'apple');
  // `$` not followed by a name stays literal, as in docker.
  assert.equal(processWord('cost $5 and $', vars), 'cost $5 and $');
  assert.throws(() => processWord('${NOPE:?needed}', vars), /NOPE: needed/);
  assert.throws(() => processWord('${A', vars), /missing "}"/);
  assert.deepEqual(processWords('a "b c" $SP d\\ e', vars), ['a', 'b c', 'two words', 'd e']);
  assert.deepEqual(keyValues('K=$A K2="x y" K3=${SP}', vars, '\\', 'ENV'), [['K', 'apple'], ['K2', 'x y'], ['K3', 'two words']]);
  assert.deepEqual(keyValues('K value with  $A', vars, '\\', 'ENV'), [['K', 'value with  apple']]);
});

test('HEALTHCHECK: docker forms as an image config Healthcheck (nanoseconds)', () => {
  const hc = (text: string) => healthcheckOf(parseContainerfile(`FROM a\n${text}\n`).stages[0].instructions[0], 'Containerfile');
  assert.deepEqual(hc('HEALTHCHECK CMD test -f /tmp/ok || exit 1'), { Test: ['CMD-SHELL', 'test -f /tmp/ok || exit 1'] });
  assert.deepEqual(hc('HEALTHCHECK CMD ["test", "-f", "/tmp/ok"]'), { Test: ['CMD', 'test', '-f', '/tmp/ok'] });
  assert.deepEqual(hc('HEALTHCHECK none'), { Test: ['NONE'] });
  assert.deepEqual(hc('HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1s --retries=5 cmd true'),
    { Test: ['CMD-SHELL', 'true'], Interval: 90e9, Timeout: 500e6, StartPeriod: 2e9, StartInterval: 1e9, Retries: 5 });
  assert.deepEqual(hc('HEALTHCHECK --interval=0 \\\n  CMD true'), { Test: ['CMD-SHELL', 'true'], Interval: 0 });
});
