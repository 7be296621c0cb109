/**
 * Image references: `name[:tag][@digest]`, where name is `[host[:port]/]path/components`.
 * Local names are normalised like docker does for the tag (`busybox` → `busybox:latest`), but not
 * for the registry: there is no implied docker.io, and a host prefix is kept as given.
 */
import { PierError } from '../../common/errors.ts';
import { parseDigest } from '../../common/digest.ts';

/** A path component (distribution spec). */
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
/** A registry host: DNS-ish labels or an IPv6 literal, with an optional port. */
const DOMAIN = /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
/** A tag (distribution spec). */
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const NAME_MAX = 255;

export interface Reference {
  /** repository name including any host prefix: `busybox`, `localhost:5000/team/app` */
  name: string;
  tag?: string;
  digest?: string;
}

export function formatReference(r: Reference): string {
  return r.name + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/**
 * Parse a reference. With `defaultTag` (the default), a reference that has neither tag nor digest
 * gets `:latest`.
 */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): Reference {
  const bad = (why: string): never => { throw new PierError(`invalid reference ${JSON.stringify(input)}: ${why}`); };
  if (typeof input !== 'string' || input === '') bad('empty');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try { parseDigest(digest); } catch (err) { bad((err as Error).message); }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) bad(`tag ${JSON.stringify(tag)} must match ${TAG_RE.source}`);
  }
  const name = rest;
  if (name === '') bad('missing repository name');
  if (name.length > NAME_MAX) bad(`name is longer than ${NAME_MAX} characters`);
  const parts = name.split('/');
  let start = 0;
  const first = parts[0];
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))) {
    if (!DOMAIN.test(first)) bad(`registry host ${JSON.stringify(first)} is not valid`);
    start = 1;
  }
  for (const c of parts.slice(start)) {
    if (!COMPONENT.test(c)) {
      bad(/[A-Z]/.test(c) ? 'repository name must be lowercase' : `name component ${JSON.stringify(c)} must match ${COMPONENT.source}`);
    }
  }
  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = 'latest';
  return { name, tag, digest };
}

/** The normalised string form: `busybox` → `busybox:latest`. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}
