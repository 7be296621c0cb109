/**
 * `.dockerignore`: one pattern a line, `#` comments, `!` exceptions, the last matching pattern wins.
 * Patterns are cleaned paths relative to the context (a leading `/` is dropped); `*` and `?` never
 * cross a `/`, `**` matches any number of directories, `[…]` is a character class. A pattern that
 * matches a directory also excludes everything under it (unless a later exception brings it back).
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { PierError, errnoOf } from '../../common/errors.ts';

interface Pattern {
  text: string;
  negate: boolean;
  re: RegExp;
}

function clean(p: string): string {
  const c = posix.normalize(p).replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
  return c === '.' ? '' : c;
}

function compile(pattern: string, line: number): RegExp {
  let re = '^';
  const p = pattern;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*') {
      if (p[i + 1] === '*') {
        i++;
        // `**/` may match nothing; a trailing `**` matches everything below.
        if (p[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) throw new PierError(`.dockerignore:${line}: unterminated character class in ${JSON.stringify(pattern)}`);
      let cls = p.slice(i + 1, end);
      if (cls.startsWith('!') || cls.startsWith('^')) cls = '^' + cls.slice(1);
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < p.length) {
      re += p[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

export class DockerIgnore {
  readonly patterns: Pattern[];
  readonly hasExceptions: boolean;

  constructor(text: string) {
    this.patterns = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const negate = line.startsWith('!');
      const body = clean(negate ? line.slice(1).trim() : line);
      if (body === '') return;
      this.patterns.push({ text: body, negate, re: compile(body, i + 1) });
    });
    this.hasExceptions = this.patterns.some((p) => p.negate);
  }

  static load(contextDir: string): DockerIgnore {
    try {
      return new DockerIgnore(readFileSync(posix.join(contextDir, '.dockerignore'), 'utf8'));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return new DockerIgnore('');
      throw err;
    }
  }

  /** Is `rel` (a path relative to the context) excluded? */
  excluded(rel: string): boolean {
    const path = clean(rel);
    if (path === '') return false;
    const parts = path.split('/');
    let out = false;
    for (const p of this.patterns) {
      // The pattern matches the path itself or one of its parent directories.
      let hit = false;
      for (let n = parts.length; n >= 1 && !hit; n--) hit = p.re.test(parts.slice(0, n).join('/'));
      if (hit) out = !p.negate;
    }
    return out;
  }

  /** Must a walk enter this excluded directory, because an exception may bring back something in it? */
  mayIncludeUnder(dir: string): boolean {
    if (!this.hasExceptions) return false;
    const d = clean(dir);
    return this.patterns.some((p) => {
      if (!p.negate) return false;
      // Literal prefix of the exception, up to its first wildcard.
      const lit = p.text.split(/[*?[\\]/)[0];
      return lit.startsWith(`${d}/`) || `${d}/`.startsWith(lit) || lit === '';
    });
  }
}
