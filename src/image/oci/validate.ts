/**
 * Hand-written checks of the image-spec shapes, run whenever pier reads an object from outside or
 * from its store. Each error names the field path (`manifest.layers[1].digest`), so a broken image
 * says what is broken. Docker schema2 objects pass (they are the same shapes); schema1 is refused.
 */
import { PierError } from '../../common/errors.ts';
import { parseDigest } from '../../common/digest.ts';
import {
  CONFIG_MEDIA_TYPES, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MEDIA_TYPES,
  type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, type Platform,
} from './types.ts';

type Obj = Record<string, unknown>;

function fail(path: string, msg: string): never {
  throw new PierError(`invalid ${path}: ${msg}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) fail(path, `must be an object, not ${kindOf(v)}`);
  return v;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function optString(o: Obj, key: string, path: string): void {
  if (o[key] !== undefined && typeof o[key] !== 'string') fail(`${path}.${key}`, `must be a string, not ${kindOf(o[key])}`);
}

function optStringArray(o: Obj, key: string, path: string): void {
  const v = o[key];
  if (v === undefined || v === null) return;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(`${path}.${key}`, 'must be an array of strings');
}

function optStringMap(o: Obj, key: string, path: string): void {
  const v = o[key];
  if (v === undefined || v === null) return;
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) fail(`${path}.${key}`, 'must be a map of strings');
}

/** A media type per RFC 6838 (type/subtype with the usual restricted characters). */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export function parseJSON(data: Uint8Array | string, what: string): unknown {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PierError(`invalid ${what}: not JSON (${(err as Error).message})`);
  }
}

export function validatePlatform(v: unknown, path: string): Platform {
  const p = obj(v, path);
  for (const k of ['architecture', 'os']) {
    if (typeof p[k] !== 'string' || p[k] === '') fail(`${path}.${k}`, 'must be a non-empty string');
  }
  optString(p, 'os.version', path);
  optString(p, 'variant', path);
  optStringArray(p, 'os.features', path);
  optStringArray(p, 'features', path);
  return p as unknown as Platform;
}

export function validateDescriptor(v: unknown, path: string): Descriptor {
  const d = obj(v, path);
  if (typeof d.mediaType !== 'string' || !MEDIA_TYPE_RE.test(d.mediaType)) {
    fail(`${path}.mediaType`, `must be a media type, not ${JSON.stringify(d.mediaType)}`);
  }
  try {
    parseDigest(d.digest, 'digest');
  } catch (err) {
    fail(`${path}.digest`, (err as Error).message);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    fail(`${path}.size`, `must be a non-negative integer, not ${JSON.stringify(d.size)}`);
  }
  optStringArray(d, 'urls', path);
  optStringMap(d, 'annotations', path);
  optString(d, 'artifactType', path);
  if (d.data !== undefined) {
    if (typeof d.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(d.data)) fail(`${path}.data`, 'must be base64');
    if (Buffer.from(d.data, 'base64').length !== d.size) fail(`${path}.data`, `decodes to a length other than size ${d.size}`);
  }
  if (d.platform !== undefined) validatePlatform(d.platform, `${path}.platform`);
  return d as unknown as Descriptor;
}

function schemaVersion2(o: Obj, path: string): void {
  if (o.schemaVersion === 1) {
    throw new PierError(`${path} is a Docker schema1 manifest: it is deprecated and not supported (convert it with a newer registry or skopeo copy --format v2s2)`);
  }
  if (o.schemaVersion !== 2) fail(`${path}.schemaVersion`, `must be 2, not ${JSON.stringify(o.schemaVersion)}`);
}

/** What a manifest-ish document is, from its mediaType (or the descriptor's) or else its fields. */
export function manifestKind(data: Uint8Array | string, descriptorMediaType?: string, what = 'manifest'): 'manifest' | 'index' {
  const o = obj(parseJSON(data, what), what);
  schemaVersion2(o, what);
  const mt = typeof o.mediaType === 'string' ? o.mediaType : descriptorMediaType;
  if (mt && INDEX_MEDIA_TYPES.includes(mt)) return 'index';
  if (mt && MANIFEST_MEDIA_TYPES.includes(mt)) return 'manifest';
  if (mt === MEDIA_TYPES.dockerSchema1 || mt === MEDIA_TYPES.dockerSchema1Signed) schemaVersion2({ schemaVersion: 1 }, what);
  if (Array.isArray(o.manifests)) return 'index';
  if (o.config !== undefined || Array.isArray(o.layers)) return 'manifest';
  fail(what, `is neither an image manifest nor an image index (mediaType ${JSON.stringify(mt)})`);
}

function checkMediaTypeField(o: Obj, allowed: readonly string[], descriptorMediaType: string | undefined, path: string): void {
  if (o.mediaType !== undefined) {
    if (typeof o.mediaType !== 'string' || !allowed.includes(o.mediaType)) {
      fail(`${path}.mediaType`, `must be one of ${allowed.join(', ')}, not ${JSON.stringify(o.mediaType)}`);
    }
    if (descriptorMediaType !== undefined && descriptorMediaType !== o.mediaType) {
      fail(`${path}.mediaType`, `${JSON.stringify(o.mediaType)} does not match its descriptor's ${JSON.stringify(descriptorMediaType)}`);
    }
  } else if (descriptorMediaType !== undefined && !allowed.includes(descriptorMediaType)) {
    fail(path, `descriptor media type ${JSON.stringify(descriptorMediaType)} is not one of ${allowed.join(', ')}`);
  }
}

export function validateManifest(v: unknown, descriptorMediaType?: string, path = 'manifest'): ImageManifest {
  const o = obj(v, path);
  schemaVersion2(o, path);
  checkMediaTypeField(o, MANIFEST_MEDIA_TYPES, descriptorMediaType, path);
  if (o.mediaType === MEDIA_TYPES.dockerManifest || descriptorMediaType === MEDIA_TYPES.dockerManifest) {
    if (o.mediaType !== MEDIA_TYPES.dockerManifest) fail(`${path}.mediaType`, 'is required in a Docker schema2 manifest');
  }
  validateDescriptor(o.config, `${path}.config`);
  if (!Array.isArray(o.layers)) fail(`${path}.layers`, `must be an array, not ${kindOf(o.layers)}`);
  o.layers.forEach((l, i) => validateDescriptor(l, `${path}.layers[${i}]`));
  if (o.subject !== undefined) validateDescriptor(o.subject, `${path}.subject`);
  optString(o, 'artifactType', path);
  optStringMap(o, 'annotations', path);
  return o as unknown as ImageManifest;
}

export function validateIndex(v: unknown, descriptorMediaType?: string, path = 'index'): ImageIndex {
  const o = obj(v, path);
  schemaVersion2(o, path);
  checkMediaTypeField(o, INDEX_MEDIA_TYPES, descriptorMediaType, path);
  if (!Array.isArray(o.manifests)) fail(`${path}.manifests`, `must be an array, not ${kindOf(o.manifests)}`);
  o.manifests.forEach((m, i) => validateDescriptor(m, `${path}.manifests[${i}]`));
  if (o.subject !== undefined) validateDescriptor(o.subject, `${path}.subject`);
  optString(o, 'artifactType', path);
  optStringMap(o, 'annotations', path);
  return o as unknown as ImageIndex;
}

export function validateConfig(v: unknown, path = 'config'): ImageConfig {
  const o = obj(v, path);
  for (const k of ['architecture', 'os']) {
    if (typeof o[k] !== 'string' || o[k] === '') fail(`${path}.${k}`, 'must be a non-empty string');
  }
  optString(o, 'created', path);
  optString(o, 'author', path);
  optString(o, 'variant', path);
  const rootfs = obj(o.rootfs, `${path}.rootfs`);
  if (rootfs.type !== 'layers') fail(`${path}.rootfs.type`, `must be "layers", not ${JSON.stringify(rootfs.type)}`);
  if (!Array.isArray(rootfs.diff_ids)) fail(`${path}.rootfs.diff_ids`, `must be an array, not ${kindOf(rootfs.diff_ids)}`);
  rootfs.diff_ids.forEach((d, i) => {
    try { parseDigest(d, 'digest'); } catch (err) { fail(`${path}.rootfs.diff_ids[${i}]`, (err as Error).message); }
  });
  if (o.config !== undefined && o.config !== null) {
    const c = obj(o.config, `${path}.config`);
    optStringArray(c, 'Env', `${path}.config`);
    optStringArray(c, 'Entrypoint', `${path}.config`);
    optStringArray(c, 'Cmd', `${path}.config`);
    optString(c, 'User', `${path}.config`);
    optString(c, 'WorkingDir', `${path}.config`);
    optString(c, 'StopSignal', `${path}.config`);
    optStringMap(c, 'Labels', `${path}.config`);
    if (c.Healthcheck !== undefined && c.Healthcheck !== null) {
      const h = obj(c.Healthcheck, `${path}.config.Healthcheck`);
      optStringArray(h, 'Test', `${path}.config.Healthcheck`);
      for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']) {
        if (h[k] !== undefined && (typeof h[k] !== 'number' || !Number.isInteger(h[k]) || (h[k] as number) < 0)) fail(`${path}.config.Healthcheck.${k}`, 'must be an integer >= 0');
      }
    }
  }
  if (o.history !== undefined && o.history !== null) {
    if (!Array.isArray(o.history)) fail(`${path}.history`, 'must be an array');
    o.history.forEach((h, i) => {
      const e = obj(h, `${path}.history[${i}]`);
      for (const k of ['created', 'created_by', 'author', 'comment']) optString(e, k, `${path}.history[${i}]`);
      if (e.empty_layer !== undefined && typeof e.empty_layer !== 'boolean') fail(`${path}.history[${i}].empty_layer`, 'must be a boolean');
    });
  }
  return o as unknown as ImageConfig;
}

/** Parse + validate bytes as an image manifest. */
export function parseManifest(data: Uint8Array | string, descriptorMediaType?: string, what = 'manifest'): ImageManifest {
  return validateManifest(parseJSON(data, what), descriptorMediaType, what);
}

export function parseIndex(data: Uint8Array | string, descriptorMediaType?: string, what = 'index'): ImageIndex {
  return validateIndex(parseJSON(data, what), descriptorMediaType, what);
}

/**
 * Parse + validate an image config. With the manifest, also check the config media type and that
 * rootfs.diff_ids has one entry per layer.
 */
export function parseConfig(data: Uint8Array | string, manifest?: ImageManifest, what = 'config'): ImageConfig {
  const cfg = validateConfig(parseJSON(data, what), what);
  if (manifest) {
    if (!CONFIG_MEDIA_TYPES.includes(manifest.config.mediaType)) {
      throw new PierError(`not a container image: config media type is ${JSON.stringify(manifest.config.mediaType)}`);
    }
    if (cfg.rootfs.diff_ids.length !== manifest.layers.length) {
      fail(`${what}.rootfs.diff_ids`, `has ${cfg.rootfs.diff_ids.length} entries but the manifest has ${manifest.layers.length} layers`);
    }
  }
  return cfg;
}
