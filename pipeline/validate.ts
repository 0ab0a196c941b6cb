/**
 * The graph rules of a pipeline, checked before anything is spawned. Each
 * rule is one small check; {@linkcode validateGraph} runs them in the
 * documented order and throws the first broken one as a
 * `PipelineValidationError`: `duplicate_id`, `duplicate_name`,
 * `unknown_node`, `unknown_node_type` and `unknown_port` (only with a
 * registry), `duplicate_connection`, `cycle`, `unreachable_node`.
 *
 * @module
 */

import { PipelineValidationError } from "../errors.ts";
import { lookupType, registryTypes } from "./_registry.ts";
import {
  findCycle,
  type PipelineGraph,
  portKey,
  unreachable,
} from "./graph.ts";
import type { NodeDefinition, NodeRegistry, PortRef } from "./schema.ts";

/** A port reference with a label for messages and the direction of the port. */
interface LabeledRef {
  label: string;
  ref: PortRef;
  dir: "input" | "output";
}

function listOrNone(xs: readonly string[]): string {
  return xs.length > 0 ? xs.join(", ") : "none";
}

/** `duplicate_id`; returns the nodes by id. */
function checkUniqueIds(g: PipelineGraph): Map<string, NodeDefinition> {
  const byId = new Map<string, NodeDefinition>();
  for (const n of g.nodes) {
    if (byId.has(n.id)) {
      throw new PipelineValidationError(
        "duplicate_id",
        `Node id "${n.id}" is used by more than one node`,
        { nodeId: n.id },
      );
    }
    byId.set(n.id, n);
  }
  return byId;
}

/** `duplicate_name`: among inputs, then among outputs. */
function checkUniqueNames(g: PipelineGraph): void {
  const lists = [["input", g.inputs], ["output", g.outputs]] as const;
  for (const [kind, list] of lists) {
    const seen = new Set<string>();
    for (const x of list) {
      if (seen.has(x.name)) {
        throw new PipelineValidationError(
          "duplicate_name",
          `Pipeline ${kind} name "${x.name}" is declared more than once`,
        );
      }
      seen.add(x.name);
    }
  }
}

/** Every port reference: connections, then inputs, then outputs. */
function portReferences(g: PipelineGraph): LabeledRef[] {
  const refs: LabeledRef[] = [];
  for (const c of g.connections) {
    const label = `Connection ${portKey(c.from)} -> ${portKey(c.to)}`;
    refs.push({ label, ref: c.from, dir: "output" });
    refs.push({ label, ref: c.to, dir: "input" });
  }
  for (const i of g.inputs) {
    for (const t of i.to) {
      refs.push({ label: `Pipeline input "${i.name}"`, ref: t, dir: "input" });
    }
  }
  for (const o of g.outputs) {
    refs.push({
      label: `Pipeline output "${o.name}"`,
      ref: o.from,
      dir: "output",
    });
  }
  return refs;
}

/** `unknown_node`: every reference names a node. */
function checkKnownNodes(
  refs: readonly LabeledRef[],
  byId: ReadonlyMap<string, NodeDefinition>,
): void {
  for (const { label, ref } of refs) {
    if (!byId.has(ref.node)) {
      throw new PipelineValidationError(
        "unknown_node",
        `${label}: no node "${ref.node}"`,
        { nodeId: ref.node },
      );
    }
  }
}

/** `unknown_node_type`: every node's type is registered. */
function checkKnownTypes(g: PipelineGraph, registry: NodeRegistry): void {
  for (const n of g.nodes) {
    if (!lookupType(registry, n.type)) {
      throw new PipelineValidationError(
        "unknown_node_type",
        `Node "${n.id}": type "${n.type}" is not in the registry (known types: ${
          listOrNone(registryTypes(registry).sort())
        })`,
        { nodeId: n.id },
      );
    }
  }
}

/** `unknown_port`: every reference names a port of its node's type. */
function checkKnownPorts(
  refs: readonly LabeledRef[],
  byId: ReadonlyMap<string, NodeDefinition>,
  registry: NodeRegistry,
): void {
  for (const { label, ref, dir } of refs) {
    const type = byId.get(ref.node)!.type;
    const ports = dir === "input"
      ? lookupType(registry, type)!.inputs
      : lookupType(registry, type)!.outputs;
    if (!ports.includes(ref.port)) {
      throw new PipelineValidationError(
        "unknown_port",
        `${label}: node "${ref.node}" (type "${type}") has no ${dir} port "${ref.port}" (${dir}s: ${
          listOrNone(ports)
        })`,
        { nodeId: ref.node },
      );
    }
  }
}

/** `duplicate_connection`: no connection is declared twice. */
function checkUniqueConnections(g: PipelineGraph): void {
  const seen = new Set<string>();
  for (const c of g.connections) {
    const key = `${portKey(c.from)} -> ${portKey(c.to)}`;
    if (seen.has(key)) {
      throw new PipelineValidationError(
        "duplicate_connection",
        `Connection ${key} is declared more than once`,
        { nodeId: c.to.node },
      );
    }
    seen.add(key);
  }
}

/** `duplicate_connection`: no pipeline input feeds a port twice. */
function checkUniqueInputReaders(g: PipelineGraph): void {
  for (const i of g.inputs) {
    const seen = new Set<string>();
    for (const t of i.to) {
      if (seen.has(portKey(t))) {
        throw new PipelineValidationError(
          "duplicate_connection",
          `Pipeline input "${i.name}" feeds ${portKey(t)} more than once`,
          { nodeId: t.node },
        );
      }
      seen.add(portKey(t));
    }
  }
}

/** `cycle`: the nodes form no cycle. */
function checkAcyclic(g: PipelineGraph): void {
  const cycle = findCycle(g);
  if (cycle) {
    throw new PipelineValidationError(
      "cycle",
      `Nodes form a cycle: ${cycle.join(" -> ")}`,
      { nodeId: cycle[0] },
    );
  }
}

/** `unreachable_node`: a pipeline input (or a source node) reaches every node. */
function checkReachable(g: PipelineGraph, registry?: NodeRegistry): void {
  const ids = unreachable(g, registry);
  if (ids.length > 0) {
    throw new PipelineValidationError(
      "unreachable_node",
      `No pipeline input reaches these nodes: ${ids.join(", ")}`,
      { nodeId: ids[0] },
    );
  }
}

/**
 * Checks the graph rules in order and throws the first broken one.
 *
 * @param g The graph.
 * @param registry The node registry, if known (enables the type and port checks).
 * @throws {PipelineValidationError} When a rule is broken.
 */
export function validateGraph(g: PipelineGraph, registry?: NodeRegistry): void {
  const byId = checkUniqueIds(g);
  checkUniqueNames(g);
  const refs = portReferences(g);
  checkKnownNodes(refs, byId);
  if (registry) {
    checkKnownTypes(g, registry);
    checkKnownPorts(refs, byId, registry);
  }
  checkUniqueConnections(g);
  checkUniqueInputReaders(g);
  checkAcyclic(g);
  checkReachable(g, registry);
}
