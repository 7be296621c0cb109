/**
 * Discovery as kubectl reads it (legacy, which every kubectl falls back to when aggregated discovery
 * is not offered): `/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`, `/version`, and
 * `/openapi/v2` as an empty protobuf document — the one answer with which kubectl 1.20–1.35 apply
 * with their default validation (../shared/notes/kubectl-wire.md §3); the server checks objects
 * itself, strictly (verbs/check.ts).
 */
import { KINDS, groupVersion, type KindInfo } from './kinds.ts';

export const VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-pier', gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean', buildDate: '2026-12-02T00:00:00Z', goVersion: 'go1.23.0', compiler: 'gc', platform: 'linux/amd64' };

function resources(kinds: KindInfo[]): Record<string, unknown>[] {
  return kinds.map((k) => ({
    name: k.resource, singularName: k.singular, namespaced: k.namespaced, kind: k.kind, verbs: k.verbs,
    ...(k.shortNames ? { shortNames: k.shortNames } : {}), ...(k.categories ? { categories: k.categories } : {}),
  }));
}

export function apiVersions(): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }] };
}

export function apiGroups(): Record<string, unknown> {
  const groups = new Map<string, string[]>();
  for (const k of KINDS) if (k.group) groups.set(k.group, [...new Set([...(groups.get(k.group) ?? []), k.version])]);
  return {
    kind: 'APIGroupList', apiVersion: 'v1',
    groups: [...groups].map(([name, versions]) => ({ name, versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })), preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] } })),
  };
}

/** The resource list of one group version; undefined when the server has none. */
export function resourceList(group: string, version: string): Record<string, unknown> | undefined {
  const kinds = KINDS.filter((k) => k.group === group && k.version === version);
  if (!kinds.length) return undefined;
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion(kinds[0]), resources: resources(kinds) };
}
