/**
 * Per-network iptables rules, installed once when a network's bridge is first needed and removed
 * with the network (docker's model), instead of the CNI bridge plugin's per-container ipMasq rules,
 * which cost 30-80 ms per container with iptables-nft.
 */
import { PierError } from '../../common/errors.ts';
import { firstLine, run, runSync, type ExecResult } from './exec.ts';

export interface BridgeNet { name: string; bridge: string; subnet: string; internal: boolean }

type Rule = { table: string; chain: string; spec: string[]; insert?: boolean };

function comment(net: BridgeNet): string[] {
  return ['-m', 'comment', '--comment', `pier network ${net.name}`];
}

/** Outbound NAT for traffic leaving the subnet through any other interface. */
function masquerade(net: BridgeNet): Rule {
  return { table: 'nat', chain: 'POSTROUTING', spec: ['-s', net.subnet, '!', '-o', net.bridge, ...comment(net), '-j', 'MASQUERADE'] };
}

/** Only needed where the FORWARD policy drops (e.g. a host that also runs docker). */
function forward(net: BridgeNet): Rule[] {
  if (net.internal) return [{ table: 'filter', chain: 'FORWARD', spec: ['-i', net.bridge, '-o', net.bridge, ...comment(net), '-j', 'ACCEPT'], insert: true }];
  return [
    { table: 'filter', chain: 'FORWARD', spec: ['-i', net.bridge, ...comment(net), '-j', 'ACCEPT'], insert: true },
    { table: 'filter', chain: 'FORWARD', spec: ['-o', net.bridge, ...comment(net), '-j', 'ACCEPT'], insert: true },
  ];
}

async function iptables(args: string[]): Promise<ExecResult> {
  return run('iptables', ['-w', ...args]);
}

async function ensureRule(r: Rule): Promise<void> {
  if ((await iptables(['-t', r.table, '-C', r.chain, ...r.spec])).code === 0) return;
  const add = await iptables(['-t', r.table, r.insert ? '-I' : '-A', r.chain, ...r.spec]);
  if (add.code !== 0) throw new PierError(`iptables: adding ${r.chain} rule: ${firstLine(add.stderr)}`);
}

function deleteRuleSync(r: Rule): void {
  // -D removes one copy; loop in case an earlier crash left duplicates.
  for (let i = 0; i < 8; i++) if (runSync('iptables', ['-w', '-t', r.table, '-D', r.chain, ...r.spec]).code !== 0) return;
}

let forwardDrops: boolean | undefined;

/** Whether FORWARD's policy is anything but ACCEPT (asked once per process). */
async function forwardNeedsRules(): Promise<boolean> {
  if (forwardDrops === undefined) {
    const r = await iptables(['-S', 'FORWARD']);
    forwardDrops = r.code === 0 && !/^-P FORWARD ACCEPT$/m.test(r.stdout);
  }
  return forwardDrops;
}

export async function installRules(net: BridgeNet): Promise<void> {
  const rules = net.internal ? [] : [masquerade(net)];
  if (await forwardNeedsRules()) rules.push(...forward(net));
  await Promise.all(rules.map(ensureRule));
}

/** Remove every rule installRules may have made (synchronously: see deleteBridgeSync); absent rules are fine. */
export function removeRulesSync(net: BridgeNet): void {
  if (forwardDrops === undefined) {
    const r = runSync('iptables', ['-w', '-S', 'FORWARD']);
    forwardDrops = r.code === 0 && !/^-P FORWARD ACCEPT$/m.test(r.stdout);
  }
  const rules = net.internal ? [] : [masquerade(net)];
  if (forwardDrops) rules.push(...forward(net));
  for (const r of rules) deleteRuleSync(r);
}
