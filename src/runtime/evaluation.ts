// Module evaluation as the spec defines it for Cyclic Module Records (Evaluate,
// InnerModuleEvaluation, ExecuteAsyncModule, AsyncModuleExecutionFulfilled/Rejected,
// GatherAvailableAncestors), so that cycles, top-level await and errors are ordered exactly as
// in native ESM: depth-first in import order, a module with a pending async dependency runs
// when its last one finishes, siblings waiting on the same async module run in the order they
// were reached, and an error is cached on every module of the failed component. Deferred imports
// (`import defer`, TC39's import-defer proposal) are not evaluated with their importer: only the
// modules with top-level await below them are (GatherAsynchronousTransitiveDependencies), and the
// rest evaluates synchronously at the first touch of the deferred namespace (evaluateSync).

export type EvaluationStatus = 'linked' | 'evaluating' | 'evaluating-async' | 'evaluated';

export interface Evaluable {
  /** Live modules this one imports statically, in import order (externals are already evaluated). */
  readonly deps: readonly Evaluable[];
  /** Beside `deps`: whether that import is deferred (`import defer`). Absent: none is. */
  readonly deferred?: readonly boolean[];
  readonly hasTLA: boolean;
  /** Runs the module body: synchronously, or returning a promise for a module with top-level await. */
  execute(): void | Promise<unknown>;
  readonly evaluation: EvaluationState;
}

export interface EvaluationState {
  status: EvaluationStatus;
  dfsIndex: number;
  dfsAncestorIndex: number;
  cycleRoot: Evaluable | null;
  /** null: not async; a number: the order it became async in; 'done': its async evaluation ended. */
  asyncOrder: number | 'done' | null;
  pendingAsync: number;
  asyncParents: Evaluable[];
  capability: PromiseWithResolvers<void> | null;
  error: { readonly value: unknown } | null;
  /** On a cycle root: the modules whose cycleRoot it is (so a swap can re-point them). */
  members: Evaluable[] | null;
}

export function newEvaluationState(): EvaluationState {
  return { status: 'linked', dfsIndex: 0, dfsAncestorIndex: 0, cycleRoot: null, asyncOrder: null, pendingAsync: 0, asyncParents: [], capability: null, error: null, members: null };
}

let asyncCount = 0;
// The intrinsic, taken before any program runs: a program that replaces the global `Promise`
// must not change how modules evaluate.
const IntrinsicPromise = Promise;

/** Evaluate(): the promise settles when the module and everything it imports has evaluated. */
export function evaluate(start: Evaluable): Promise<void> {
  let module = start;
  if (module.evaluation.status === 'evaluating-async' || module.evaluation.status === 'evaluated') module = module.evaluation.cycleRoot ?? module;
  const state = module.evaluation;
  if (state.capability) return state.capability.promise;
  const capability = IntrinsicPromise.withResolvers<void>();
  state.capability = capability;
  const stack: Evaluable[] = [];
  try {
    inner(module, stack, 0);
    if (state.status === 'evaluated') capability.resolve();
  } catch (error) {
    for (const member of stack) {
      member.evaluation.status = 'evaluated';
      member.evaluation.error = { value: error };
    }
    capability.reject(error);
  }
  return capability.promise;
}

function inner(module: Evaluable, stack: Evaluable[], index: number): number {
  const state = module.evaluation;
  if (state.status === 'evaluating-async' || state.status === 'evaluated') {
    if (state.error) throw state.error.value;
    return index;
  }
  if (state.status === 'evaluating') return index;
  state.status = 'evaluating';
  state.dfsIndex = index;
  state.dfsAncestorIndex = index;
  state.pendingAsync = 0;
  index += 1;
  stack.push(module);
  for (const dep of evaluationList(module)) {
    index = inner(dep, stack, index);
    let required = dep;
    if (required.evaluation.status === 'evaluating') {
      state.dfsAncestorIndex = Math.min(state.dfsAncestorIndex, required.evaluation.dfsAncestorIndex);
    } else {
      required = required.evaluation.cycleRoot ?? required;
      if (required.evaluation.error) throw required.evaluation.error.value;
    }
    if (typeof required.evaluation.asyncOrder === 'number') {
      state.pendingAsync += 1;
      required.evaluation.asyncParents.push(module);
    }
  }
  if (state.pendingAsync > 0 || module.hasTLA) {
    asyncCount += 1;
    state.asyncOrder = asyncCount;
    if (state.pendingAsync === 0) executeAsync(module);
  } else {
    module.execute();
  }
  if (state.dfsAncestorIndex === state.dfsIndex) {
    for (;;) {
      const member = stack.pop()!;
      member.evaluation.status = typeof member.evaluation.asyncOrder === 'number' ? 'evaluating-async' : 'evaluated';
      member.evaluation.cycleRoot = module;
      if (member !== module) (state.members ??= []).push(member);
      if (member === module) break;
    }
  }
  return index;
}

/** The modules InnerModuleEvaluation walks for `module`: its imports, a deferred one replaced by the async modules below it. */
function evaluationList(module: Evaluable): readonly Evaluable[] {
  const deferred = module.deferred;
  if (!deferred?.includes(true)) return module.deps;
  const list: Evaluable[] = [];
  module.deps.forEach((dep, index) => {
    for (const required of deferred[index] ? asyncTransitiveDependencies(dep) : [dep]) {
      if (!list.includes(required)) list.push(required);
    }
  });
  return list;
}

/** GatherAsynchronousTransitiveDependencies: the not yet evaluated modules with top-level await that `module` reaches. */
export function asyncTransitiveDependencies(module: Evaluable, seen: Set<Evaluable> = new Set(), result: Evaluable[] = []): Evaluable[] {
  if (seen.has(module)) return result;
  seen.add(module);
  if (module.evaluation.status === 'evaluating' || sccEvaluated(module)) return result;
  if (module.hasTLA) {
    if (!result.includes(module)) result.push(module);
    return result;
  }
  for (const dep of module.deps) asyncTransitiveDependencies(dep, seen, result);
  return result;
}

/** IsModuleSCCEvaluated: the module's strongly connected component has finished evaluating. */
function sccEvaluated(module: Evaluable): boolean {
  const root = module.evaluation.cycleRoot;
  return (root ?? module).evaluation.status === 'evaluated';
}

/** ReadyForSyncExecution: the module and everything it imports can evaluate synchronously now. */
export function readyForSync(module: Evaluable, seen: Set<Evaluable> = new Set()): boolean {
  if (seen.has(module)) return true;
  seen.add(module);
  if (sccEvaluated(module)) return true;
  const status = module.evaluation.status;
  if (status === 'evaluating' || status === 'evaluating-async') return false;
  if (module.hasTLA) return false;
  return module.deps.every((dep) => readyForSync(dep, seen));
}

/**
 * EnsureDeferredNamespaceEvaluation: evaluates a deferred module synchronously (its first touch
 * through a deferred namespace), throwing its evaluation error; a TypeError when it cannot run
 * synchronously now (it is evaluating, or waits for top-level await).
 */
export function evaluateSync(module: Evaluable): void {
  const state = module.evaluation;
  if (state.status === 'evaluated' && !state.error) return;
  if (state.status !== 'evaluated' && !readyForSync(module)) {
    throw new TypeError('Cannot evaluate a deferred module now: it is being evaluated, or it (or a module it imports) waits for top-level await');
  }
  const promise = evaluate(module);
  promise.catch(() => undefined);
  const root = state.cycleRoot ?? module;
  const error = state.error ?? root.evaluation.error;
  if (error) throw error.value;
}

function executeAsync(module: Evaluable): void {
  let pending: Promise<unknown>;
  try {
    pending = IntrinsicPromise.resolve(module.execute());
  } catch (error) {
    pending = IntrinsicPromise.reject(error);
  }
  pending.then(
    () => fulfilled(module),
    (error: unknown) => rejected(module, error),
  );
}

function fulfilled(module: Evaluable): void {
  const state = module.evaluation;
  if (state.status === 'evaluated') return;
  state.asyncOrder = 'done';
  state.status = 'evaluated';
  state.capability?.resolve();
  const ready: Evaluable[] = [];
  gatherAvailableAncestors(module, ready);
  // Parents are only waited on while this module is pending: done, the list only holds memory.
  state.asyncParents = [];
  ready.sort((a, b) => (a.evaluation.asyncOrder as number) - (b.evaluation.asyncOrder as number));
  for (const member of ready) {
    if (member.evaluation.status === 'evaluated') continue;
    if (member.hasTLA) {
      executeAsync(member);
      continue;
    }
    try {
      member.execute();
    } catch (error) {
      rejected(member, error);
      continue;
    }
    member.evaluation.asyncOrder = 'done';
    member.evaluation.status = 'evaluated';
    member.evaluation.capability?.resolve();
  }
}

function gatherAvailableAncestors(module: Evaluable, ready: Evaluable[]): void {
  for (const parent of module.evaluation.asyncParents) {
    if (ready.includes(parent) || parent.evaluation.cycleRoot?.evaluation.error) continue;
    parent.evaluation.pendingAsync -= 1;
    if (parent.evaluation.pendingAsync === 0) {
      ready.push(parent);
      if (!parent.hasTLA) gatherAvailableAncestors(parent, ready);
    }
  }
}

function rejected(module: Evaluable, error: unknown): void {
  const state = module.evaluation;
  if (state.status === 'evaluated') return;
  state.error = { value: error };
  state.status = 'evaluated';
  if (typeof state.asyncOrder === 'number') state.asyncOrder = 'done';
  // The module's own promise first, then its parents': leaf to root, as the spec orders it.
  state.capability?.reject(error);
  const parents = state.asyncParents;
  state.asyncParents = [];
  for (const parent of parents) rejected(parent, error);
}
