/**
 * Platforms (`os/architecture[/variant]`): parsing what a user types, matching an index entry to
 * the platform wanted, and naming one in messages. Shared by image resolution and registry pulls.
 */
import { PierError } from '../../common/errors.ts';
import type { Descriptor, Platform } from './types.ts';

/** `linux/arm64/v8` → { os, architecture, variant }; one clear error for anything else. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new PierError(`invalid platform ${JSON.stringify(s)}: give os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  const [os, architecture, variant] = parts;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** The platform an image config describes (its os, architecture and variant). */
export function platformOf(config: { os: string; architecture: string; variant?: string }): Platform {
  return { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return '?';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** os and architecture equal; a variant counts only when both sides name one. */
export function platformMatches(p: Platform | undefined, want: Platform): boolean {
  if (!p || p.os !== want.os || p.architecture !== want.architecture) return false;
  return !want.variant || !p.variant || p.variant === want.variant;
}

/** The entry of an index for `want`; a lone entry without a platform stands for any. */
export function pickPlatform(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  return manifests.find((m) => platformMatches(m.platform, want)) ??
    (manifests.length === 1 && !manifests[0].platform ? manifests[0] : undefined);
}

/** "linux/amd64, linux/arm64/v8" for an error naming what an index has. */
export function platformsOf(manifests: Descriptor[]): string {
  return manifests.map((m) => formatPlatform(m.platform)).join(', ') || 'none';
}
