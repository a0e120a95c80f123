import { tf } from '../tf.js';

/** The parts of a tfjs tape node the backward pass reads. */
interface TapeNode {
  id: number;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  kernelName: string;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

/** Nodes on a path from one of `xs` to `y`, with inputs pruned to those that depend on `xs`. */
function pathNodes(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodesFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodesToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  return tape
    .filter((n) => nodesFromX.has(n.id) && nodesToY.has(n.id))
    .map((n) => ({
      ...n,
      inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))),
    }));
}

/**
 * `tf.variableGrads` with a backward pass that frees as it goes. tfjs keeps every intermediate
 * gradient and every saved activation until the whole backward pass ends, so a training step
 * needs about twice the memory of its tape; here a node's output gradients and saved tensors are
 * released as soon as the node has been back-propagated. Same results as `tf.variableGrads`
 * (variables without a gradient are left out, as there).
 *
 * With `options.dy`, `f` may return a tensor of dy's shape and the backward pass starts from dy
 * (a vector-Jacobian product): what a checkpointed block needs, without building
 * `sum(f() · dy)` and its map-sized temporaries.
 */
export function variableGradsEager<T extends tf.Tensor = tf.Scalar>(
  f: () => T,
  varList: tf.Variable[],
  options: { dy?: tf.Tensor } = {},
): { value: T; grads: Record<string, tf.Tensor> } {
  const engine = tf.engine() as unknown as EngineInternals;
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => engine.tidy('forward', f),
  ) as T;
  const { dy } = options;
  if (!(y instanceof tf.Tensor)) throw new Error('variableGradsEager: f must return a tensor');
  if (!dy && y.rank !== 0) throw new Error('variableGradsEager: f must return a scalar (or pass dy)');
  if (dy && (dy.rank !== y.rank || dy.shape.some((d, i) => d !== y.shape[i])))
    throw new Error(`variableGradsEager: dy has shape [${dy.shape}], f returned [${y.shape}]`);
  const tape = engine.state.activeTape ?? [];
  const nodes = pathNodes(tape, varList, y);
  const wanted = new Set(varList.map((v) => v.id));
  const grad = new Map<number, tf.Tensor>([[y.id, dy ? tf.clone(dy) : tf.onesLike(y)]]);
  const freed = new Set<TapeNode['saved']>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    const dys = node.outputs.map((o) => grad.get(o.id) ?? null);
    if (dys.some((d) => d !== null)) {
      if (!node.gradient)
        throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
      const gradient = node.gradient;
      const inputs = Object.entries(node.inputs);
      // One tidy per node: tensors a gradient function makes besides its results are freed.
      const dxs = tf.tidy(() => {
        const inputGrads = gradient(dys);
        return inputs.map(([name]) => inputGrads[name]());
      });
      for (const [k, [, x]] of inputs.entries()) {
        const dx = dxs[k];
        const cur = grad.get(x.id);
        if (cur) {
          grad.set(x.id, tf.add(cur, dx));
          cur.dispose();
          dx.dispose();
        } else grad.set(x.id, dx);
      }
    }
    // Every consumer of this node's outputs came later on the tape and is done.
    for (const o of node.outputs) {
      if (wanted.has(o.id)) continue;
      grad.get(o.id)?.dispose();
      grad.delete(o.id);
    }
    if (engine.state.gradientDepth === 0 && node.saved && !freed.has(node.saved)) {
      node.saved.forEach((t) => t.dispose());
      freed.add(node.saved);
    }
  }
  const grads: Record<string, tf.Tensor> = {};
  for (const v of varList) {
    const g = grad.get(v.id);
    if (g) grads[v.name] = g;
  }
  for (const [id, g] of grad) if (!wanted.has(id)) g.dispose();
  if (engine.state.gradientDepth === 0) {
    for (const node of tape) if (node.saved && !freed.has(node.saved)) node.saved.forEach((t) => t.dispose());
    engine.state.activeTape = null;
  }
  return { value: y, grads };
}
