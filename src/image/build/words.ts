/**
 * Variable substitution the way docker applies it to instruction arguments: `$VAR`, `${VAR}`,
 * `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?msg}`; single quotes keep
 * text literal, double quotes allow substitution, the escape character escapes the next one. Quotes
 * are removed from the result. Words split on unquoted blanks of the text as written, so a value
 * with spaces stays one word.
 */
import { PierError } from '../../common/errors.ts';

export type Vars = ReadonlyMap<string, string>;

class Lexer {
  readonly s: string;
  readonly vars: Vars;
  readonly escape: string;
  i = 0;
  constructor(s: string, vars: Vars, escape: string) {
    this.s = s;
    this.vars = vars;
    this.escape = escape;
  }

  /** Words of the text; `split` false keeps blanks (one word). */
  words(split: boolean): string[] {
    const out: string[] = [];
    let cur = '';
    let inWord = false;
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i];
      if (split && /\s/.test(c)) {
        if (inWord) out.push(cur);
        cur = '';
        inWord = false;
        this.i++;
        continue;
      }
      inWord = true;
      if (c === this.escape) {
        this.i++;
        if (this.i < s.length) cur += s[this.i++];
        else cur += c;
      } else if (c === "'") {
        const end = s.indexOf("'", this.i + 1);
        if (end < 0) throw new PierError('unterminated single quote');
        cur += s.slice(this.i + 1, end);
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        for (;;) {
          if (this.i >= s.length) throw new PierError('unterminated double quote');
          const d = s[this.i];
          if (d === '"') { this.i++; break; }
          if (d === this.escape && this.i + 1 < s.length && '"$`\\'.includes(s[this.i + 1]) && (s[this.i + 1] !== '`' || this.escape === '`')) {
            cur += s[this.i + 1];
            this.i += 2;
          } else if (d === '$') {
            cur += this.variable();
          } else {
            cur += d;
            this.i++;
          }
        }
      } else if (c === '$') {
        cur += this.variable();
      } else {
        cur += c;
        this.i++;
      }
    }
    if (inWord) out.push(cur);
    return out;
  }

  /** At a `$`: the variable's value (or the `$` itself when no name follows). */
  private variable(): string {
    const s = this.s;
    this.i++; // $
    if (s[this.i] === '{') {
      const close = this.matchBrace(this.i);
      const body = s.slice(this.i + 1, close);
      this.i = close + 1;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(body);
      if (!m) throw new PierError(`bad substitution "\${${body}}"`);
      const [, name, op, word] = m;
      const set = this.vars.has(name);
      const value = this.vars.get(name) ?? '';
      if (!op) return value;
      const nonEmpty = op.startsWith(':') ? set && value !== '' : set;
      const nested = () => new Lexer(word, this.vars, this.escape).words(false).join('');
      switch (op.slice(-1)) {
        case '-': return nonEmpty ? value : nested();
        case '+': return nonEmpty ? nested() : '';
        default:
          if (!nonEmpty) throw new PierError(`${name}: ${word ? nested() : 'is not set'}`);
          return value;
      }
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(this.i));
    if (!m) return '$';
    this.i += m[0].length;
    return this.vars.get(m[0]) ?? '';
  }

  private matchBrace(open: number): number {
    let depth = 0;
    for (let j = open; j < this.s.length; j++) {
      if (this.s[j] === '{') depth++;
      else if (this.s[j] === '}' && --depth === 0) return j;
    }
    throw new PierError('missing "}" in variable substitution');
  }
}

/** The text as one word: variables substituted, quotes removed, blanks kept. */
export function processWord(s: string, vars: Vars, escape = '\\'): string {
  return new Lexer(s, vars, escape).words(false).join('');
}

/** The text as words: split on unquoted blanks, then substituted and unquoted. */
export function processWords(s: string, vars: Vars, escape = '\\'): string[] {
  return new Lexer(s, vars, escape).words(true);
}

/** `a=b "c=d e"` → [[a,b],[c,"d e"]]; also docker's legacy `KEY value with spaces` for ENV. */
export function keyValues(s: string, vars: Vars, escape: string, what: string): [string, string][] {
  const words = processWords(s, vars, escape);
  const first = /^\S+/.exec(s)?.[0] ?? '';
  if (!first.includes('=')) {
    // Legacy form: the first word is the key, the rest (as written, substituted) the value.
    const rest = s.slice(first.length).trim();
    if (!rest) throw new PierError(`${what} needs a value`);
    return [[processWord(first, vars, escape), processWord(rest, vars, escape)]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new PierError(`expected key=value, got ${JSON.stringify(w)}`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}
