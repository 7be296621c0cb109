/**
 * Schema checks for what arrives over a wire: a TypeBox schema (which is JSON Schema, and gives the
 * TypeScript type) compiled once, and a refusal that is one line naming the bad field, e.g.
 * `cmd: expected an array` or `log.maxFiles: expected an integer ≥ 1`. A schema may carry
 * `errorMessage: 'expected …'` to put its expectation in words. TypeBox rather than a
 * hand-written walker: schema-first types and a compiled validator are what the Kubernetes-style API
 * server will need as well.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { HttpError } from './http-server.ts';

export { Type, type Static, type TSchema } from '@sinclair/typebox';

export interface Checker<T extends TSchema> {
  /** The value, typed, or an HttpError(400) naming the first bad field. */
  check(value: unknown, what?: string): Static<T>;
  schema: T;
}

/** `/log/maxFiles` → `log.maxFiles`, `/ports/0/hostPort` → `ports[0].hostPort`. */
export function fieldName(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out;
}

export function compile<T extends TSchema>(schema: T): Checker<T> {
  let compiled: TypeCheck<T> | undefined;
  return {
    schema,
    check(value: unknown, what = 'request body'): Static<T> {
      compiled ??= TypeCompiler.Compile(schema);
      if (compiled.Check(value)) return value;
      const first = compiled.Errors(value).First();
      if (!first) throw new HttpError(400, `${what} is not valid`);
      const field = fieldName(first.path);
      if (first.message === 'Unexpected property') throw new HttpError(400, `${what}: unknown field ${field}`);
      // A schema may say in words what it expects (`errorMessage`), where TypeBox's own message
      // would quote a regular expression or say only "expected union value".
      const own = (first.schema as { errorMessage?: unknown }).errorMessage;
      const message = typeof own === 'string' ? own : first.message.replace(/^Expected/, 'expected');
      throw new HttpError(400, field ? `${what}: field ${field}: ${message}` : `${what}: ${message}`);
    },
  };
}
