/**
 * The graph of a pipeline: node adjacency, cycle and reachability searches,
 * topological order, and the data channels derived from the connections,
 * inputs and outputs. Pure functions of a {@linkcode PipelineGraph}.
 *
 * @module
 */

import { PipelineValidationError } from "../errors.ts";
import { lookupType } from "./_registry.ts";
import type {
  InputChannel,
  NodePorts,
  NodeRegistry,
  PipelineChannel,
  PipelineDefinition,
  PortRef,
} from "./schema.ts";

/** The parts of a definition the graph functions read (never modified). */
export type PipelineGraph = Readonly<
  Pick<PipelineDefinition, "nodes" | "connections" | "inputs" | "outputs">
>;

/**
 * The key of a port, which is also the name of its channel.
 *
 * @param r The port.
 * @returns `<node id>.<port>`.
 */
export function portKey(r: PortRef): string {
  return `${r.node}.${r.port}`;
}

/**
 * Node id to the ids of the nodes it feeds (deduplicated, connection order);
 * connections to unknown nodes are left out.
 *
 * @param g The graph.
 * @returns The adjacency, in definition order of the nodes.
 */
export function adjacency(g: PipelineGraph): Map<string, string[]> {
  const adj = new Map<string, string[]>();
  for (const n of g.nodes) if (!adj.has(n.id)) adj.set(n.id, []);
  for (const c of g.connections) {
    const next = adj.get(c.from.node);
    if (next && adj.has(c.to.node) && !next.includes(c.to.node)) {
      next.push(c.to.node);
    }
  }
  return adj;
}

/**
 * The first cycle of a depth-first search in definition order.
 *
 * @param g The graph.
 * @returns The node ids on the cycle, the first repeated at the end, or
 * `undefined` when there is none.
 */
export function findCycle(g: PipelineGraph): string[] | undefined {
  const adj = adjacency(g);
  const state = new Map<string, 1 | 2>(); // 1: on the stack, 2: done
  const stack: string[] = [];
  const visit = (u: string): string[] | undefined => {
    state.set(u, 1);
    stack.push(u);
    for (const v of adj.get(u)!) {
      const s = state.get(v);
      if (s === 1) return [...stack.slice(stack.indexOf(v)), v];
      if (s === undefined) {
        const found = visit(v);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(u, 2);
    return undefined;
  };
  for (const id of adj.keys()) {
    if (!state.has(id)) {
      const found = visit(id);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * The nodes no pipeline input reaches. With a registry, source nodes (types
 * without input ports) count as reached.
 *
 * @param g The graph.
 * @param registry The node registry, if known.
 * @returns The node ids, in definition order.
 */
export function unreachable(
  g: PipelineGraph,
  registry?: NodeRegistry,
): string[] {
  const adj = adjacency(g);
  const seen = new Set<string>();
  const queue: string[] = [];
  const reach = (id: string): void => {
    if (!seen.has(id) && adj.has(id)) {
      seen.add(id);
      queue.push(id);
    }
  };
  for (const i of g.inputs) for (const t of i.to) reach(t.node);
  if (registry) {
    // Source nodes (types without input ports) produce data on their own.
    for (const n of g.nodes) {
      if (lookupType(registry, n.type)?.inputs.length === 0) reach(n.id);
    }
  }
  while (queue.length > 0) for (const v of adj.get(queue.shift()!)!) reach(v);
  return [...adj.keys()].filter((id) => !seen.has(id));
}

/**
 * The node ids in an order where every node comes after the nodes it reads
 * from (ties in definition order); nodes on a cycle are left out.
 *
 * @param g The graph.
 * @returns Node ids.
 */
export function topologicalOrder(g: PipelineGraph): string[] {
  const adj = adjacency(g);
  const indeg = new Map<string, number>();
  for (const id of adj.keys()) indeg.set(id, 0);
  for (const next of adj.values()) {
    for (const v of next) indeg.set(v, indeg.get(v)! + 1);
  }
  const order: string[] = [];
  const done = new Set<string>();
  let progress = true;
  while (progress) {
    progress = false;
    for (const id of adj.keys()) {
      if (!done.has(id) && indeg.get(id) === 0) {
        done.add(id);
        order.push(id);
        for (const v of adj.get(id)!) indeg.set(v, indeg.get(v)! - 1);
        progress = true;
        break;
      }
    }
  }
  return order;
}

/**
 * The data channels: one per node output port that a node or a pipeline
 * output reads, in order of first use (connections first, then outputs).
 *
 * @param g The graph.
 * @returns The channels.
 */
export function channels(g: PipelineGraph): PipelineChannel[] {
  const byKey = new Map<string, PipelineChannel>();
  const get = (r: PortRef): PipelineChannel => {
    const key = portKey(r);
    let c = byKey.get(key);
    if (!c) {
      c = {
        name: key,
        source: { ...r },
        readers: [],
        outputs: [],
        denoReads: false,
      };
      byKey.set(key, c);
    }
    return c;
  };
  for (const c of g.connections) get(c.from).readers.push({ ...c.to });
  for (const o of g.outputs) {
    const c = get(o.from);
    c.outputs.push(o.name);
    c.denoReads = true;
  }
  return [...byKey.values()];
}

/**
 * The channels of the pipeline inputs, which the Deno process publishes.
 *
 * @param g The graph.
 * @returns One channel per input, with its readers.
 */
export function inputChannels(g: PipelineGraph): InputChannel[] {
  return g.inputs.map((i) => ({
    name: `in.${i.name}`,
    input: i.name,
    readers: i.to.map((t) => ({ ...t })),
  }));
}

/**
 * The channels one node reads and writes, in the shape of the runner spec.
 *
 * @param g The graph.
 * @param nodeId The node.
 * @returns Its ports' channels.
 * @throws {PipelineValidationError} `unknown_node` when there is no such node.
 */
export function nodePorts(g: PipelineGraph, nodeId: string): NodePorts {
  if (!g.nodes.some((n) => n.id === nodeId)) {
    throw new PipelineValidationError("unknown_node", `No node "${nodeId}"`, {
      nodeId,
    });
  }
  const inputs: Record<string, string[]> = {};
  const outputs: Record<string, string> = {};
  const addIn = (port: string, channel: string): void => {
    (inputs[port] ??= []).includes(channel) || inputs[port].push(channel);
  };
  for (const i of g.inputs) {
    for (const t of i.to) {
      if (t.node === nodeId) addIn(t.port, `in.${i.name}`);
    }
  }
  for (const c of g.connections) {
    if (c.to.node === nodeId) addIn(c.to.port, portKey(c.from));
  }
  for (const ch of channels(g)) {
    if (ch.source.node === nodeId) outputs[ch.source.port] = ch.name;
  }
  return { inputs, outputs };
}
