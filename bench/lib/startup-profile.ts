// Reads a V8 .cpuprofile (node --cpu-prof) and says where a start-up's time went, three ways,
// each with its share of the sampled total:
//   parts      self time grouped into what a reader can act on (Node's start-up, its module
//              loader, type stripping, fetch, each livemod subsystem, the tree's own code, GC);
//              native frames and general builtins (fs, crypto, path, loading a builtin) count
//              for the code that called them
//   livemod    inclusive time of livemod's own functions (file:function:line), a recursive
//              function counted once per sample
//   functions  self time per function
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileCost {
  readonly name: string;
  readonly ms: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly parts: readonly ProfileCost[];
  readonly livemod: readonly ProfileCost[];
  readonly functions: readonly ProfileCost[];
}

/**
 * A frame's file relative to the repository. livemod as the benches run it (installedCli: a copy
 * under bench/out/installed) counts as its own dist/: taken for the tree, it had made livemod's
 * own start-up read as "the tree (native)" and left its functions out of the table.
 */
function where(url: string, root: string): string {
  return url.startsWith('file:') ? relative(root, fileURLToPath(url)).replace(/^bench\/out\/installed\//, '') : url;
}

/** The part of a start-up a frame belongs to, or null when its caller decides. */
function part(frame: CallFrame, root: string): string | null {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') && functionName !== '(anonymous)' ? functionName : null;
  if (url.startsWith('wasm://') || url.includes('/amaro/')) return 'type stripping of .ts (amaro)';
  if (url.includes('undici') || /^node:(internal\/)?(net|dns|http|stream|tls)/.test(url)) return 'HTTP client (node:http, sockets)';
  if (/^node:(internal\/)?vm/.test(url)) return 'vm.compileFunction';
  if (url.startsWith('node:internal/modules') || url === 'node:module') return 'Node module loader';
  if (/^node:internal\/(main|process)\//.test(url)) return 'Node start-up';
  // Other builtins (fs, path, crypto, buffer, the lazy loader of builtins) count for their caller.
  if (url.startsWith('node:')) return null;
  if (!url.startsWith('file:')) return 'the tree (evaluated by livemod)';
  const path = where(url, root);
  const source = /^(src|dist)\/([^/]+)\//.exec(path);
  if (source) return `livemod ${source[1]}/${source[2]}`;
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (dependency) return `node_modules/${dependency[1]}`;
  if (path.startsWith('bench/out/')) return 'the tree (native)';
  return path;
}

function rank(costs: ReadonlyMap<string, number>, totalUs: number, top: number): ProfileCost[] {
  return [...costs]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, share: us / totalUs }));
}

/** Summarises `file`; paths are shown relative to `root` (the repository). */
export function summariseProfile(file: string, root: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  // timeDeltas[i] is the time before sample i; charge it to the node sampled there.
  const self = new Map<number, number>();
  for (let index = 0; index < profile.samples.length; index += 1) {
    const id = profile.samples[index]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  }
  const totalUs = [...self.values()].reduce((sum, us) => sum + us, 0);
  const parts = new Map<string, number>();
  const livemod = new Map<string, number>();
  const functions = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number): void => void map.set(key, (map.get(key) ?? 0) + us);
  const name = (frame: CallFrame): string => (frame.url === '' ? frame.functionName || '(anonymous)' : `${where(frame.url, root)}:${frame.functionName || '(anonymous)'}:${frame.lineNumber + 1}`);
  for (const [id, us] of self) {
    const leaf = byId.get(id)!.callFrame;
    add(functions, name(leaf), us);
    let owner: string | null = null;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      owner ??= part(frame, root);
      const label = name(frame);
      if (/^(src|dist)\//.test(where(frame.url, root)) && !seen.has(label)) {
        seen.add(label);
        add(livemod, label, us);
      }
    }
    add(parts, owner ?? 'Node start-up', us);
  }
  return { totalMs: totalUs / 1000, parts: rank(parts, totalUs, top), livemod: rank(livemod, totalUs, top), functions: rank(functions, totalUs, top) };
}
