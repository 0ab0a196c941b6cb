/**
 * Placement of nodes on hosts (issue 14; docs/architecture.md, "Multi-host"):
 * the check that every node's `host` is configured and that no connection
 * joins two different remote hosts, and the plan of which nodes run on which
 * remote host and which channels cross between this host and another. Pure
 * functions of the pipeline and the configuration: no I/O.
 *
 * @module
 */
import { PipelineValidationError } from "../errors.ts";
import type { NodeDefinition, Pipeline } from "../pipeline/mod.ts";
import type { RuntimeConfig } from "./config.ts";

/** The host name that means this host (as does a node without `host`). */
export const LOCAL_HOST = "local";

/**
 * Which remote hosts run which nodes, and which channels cross to them
 * ({@linkcode planHosts}).
 *
 * @example
 * ```ts
 * import { type HostPlan, planHosts } from "./_hosts.ts";
 * import { Pipeline } from "../pipeline/mod.ts";
 * const plan: HostPlan = planHosts(
 *   new Pipeline().addNode("t", "asr", {}, { host: "gpu" })
 *     .addInput("audio", "asr", "in").addOutput("text", "asr", "out"),
 * );
 * console.log(plan.bridges.map((b) => `${b.channel} ${b.direction}`)); // ["in.audio out", "asr.out in"]
 * ```
 */
export interface HostPlan {
  /** Remote host name -> ids of the nodes placed there (hosts in first-use order). Empty when all nodes are local. */
  nodes: Map<string, string[]>;
  /** Channels that must cross: each one once per (channel, remote host) pair. */
  bridges: BridgePlan[];
}

/**
 * One channel crossing between this host and one remote host: an egress
 * bridge on the producing side, an ingress bridge on the reading side.
 *
 * @example
 * ```ts
 * import type { BridgePlan } from "./_hosts.ts";
 * const b: BridgePlan = { channel: "a.out", host: "gpu", direction: "out" };
 * console.log(b.host); // "gpu"
 * ```
 */
export interface BridgePlan {
  /** The channel name (as `pipeline.channels()` / `pipeline.inputChannels()` name it, e.g. "in.audio", "asr.out"). */
  channel: string;
  /** The remote host at the other end. */
  host: string;
  /** "out": produced locally (a local node or a pipeline input from Deno), read on `host`; "in": produced on `host`, read locally (by a local node or as a pipeline output by Deno). */
  direction: "out" | "in";
}

/**
 * The remote host a node runs on, or `undefined` for this host (no `host`,
 * or `"local"`).
 *
 * @param node The node's definition.
 * @returns The host name, or `undefined`.
 *
 * @example
 * ```ts
 * import { remoteHost } from "./_hosts.ts";
 * console.log(remoteHost({ id: "a", type: "t", config: {}, host: "gpu" })); // "gpu"
 * console.log(remoteHost({ id: "b", type: "t", config: {}, host: "local" })); // undefined
 * ```
 */
export function remoteHost(node: NodeDefinition): string | undefined {
  return node.host === undefined || node.host === LOCAL_HOST
    ? undefined
    : node.host;
}

/** Node id -> its remote host (local nodes are absent). */
function hostsById(pipeline: Pipeline): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of pipeline.toJSON().nodes) {
    const h = remoteHost(n);
    if (h !== undefined) out.set(n.id, h);
  }
  return out;
}

/** Throws `remote_edge` for the first connection between two remote hosts. */
function checkRemoteEdges(
  pipeline: Pipeline,
  hosts: Map<string, string>,
): void {
  for (const c of pipeline.toJSON().connections) {
    const from = hosts.get(c.from.node);
    const to = hosts.get(c.to.node);
    if (from === undefined || to === undefined || from === to) continue;
    throw new PipelineValidationError(
      "remote_edge",
      `Connection ${c.from.node}.${c.from.port} -> ${c.to.node}.${c.to.port}: nodes "${c.from.node}" (host "${from}") and "${c.to.node}" (host "${to}") are on two different remote hosts, which this version cannot connect; place one of them on the local host (no host, or host = "${LOCAL_HOST}")`,
      { nodeId: c.to.node },
    );
  }
}

/**
 * Checks the placement of a pipeline's nodes against the configuration:
 * throws `unknown_host` for the first node whose `host` is neither absent,
 * `"local"` nor a configured host, then `remote_edge` for the first
 * connection between nodes on two different remote hosts (not supported in
 * this version).
 *
 * @param pipeline The pipeline.
 * @param config The runtime configuration (its `hosts`).
 * @throws {PipelineValidationError} `unknown_host` or `remote_edge`, with the
 * node's id.
 *
 * @example
 * ```ts
 * import { checkHosts } from "./_hosts.ts";
 * import { defaultConfig } from "./config.ts";
 * import { Pipeline } from "../pipeline/mod.ts";
 * import { PipelineValidationError } from "../errors.ts";
 * const p = new Pipeline().addNode("asr", "asr", {}, { host: "gpu" })
 *   .addInput("audio", "asr", "in");
 * try {
 *   checkHosts(p, defaultConfig());
 * } catch (e) {
 *   if (e instanceof PipelineValidationError) console.log(e.code); // "unknown_host"
 * }
 * ```
 */
export function checkHosts(pipeline: Pipeline, config: RuntimeConfig): void {
  const known = Object.keys(config.hosts);
  for (const n of pipeline.toJSON().nodes) {
    const h = remoteHost(n);
    if (h === undefined || Object.hasOwn(config.hosts, h)) continue;
    throw new PipelineValidationError(
      "unknown_host",
      `Node "${n.id}": host "${h}" is not configured (configured: ${
        known.length ? known.join(", ") : "none"
      }; add [multiprocess.hosts.${h}] with endpoint = "tcp/<address>:7447" to runtime.toml, or hosts in code)`,
      { nodeId: n.id },
    );
  }
  checkRemoteEdges(pipeline, hostsById(pipeline));
}

/**
 * Plans a pipeline's placement: the nodes each remote host runs, and the
 * channels that cross between this host and a remote one. A channel produced
 * here (by a local node, or a pipeline input Deno publishes) crosses `"out"`
 * once to each remote host that reads it; a channel produced on a remote host
 * crosses `"in"` once when this host reads it (a local node, or Deno as a
 * pipeline output). A channel between nodes of one host does not cross. A
 * node with `host = "local"` is local.
 *
 * @param pipeline The pipeline (validated; see {@linkcode checkHosts}).
 * @returns The plan: bridges of the pipeline inputs first, then of the node
 * channels, each in `channels()` order.
 * @throws {PipelineValidationError} `remote_edge` for a connection between
 * two different remote hosts.
 *
 * @example The middle node on another host
 * ```ts
 * import { planHosts } from "./_hosts.ts";
 * import { Pipeline } from "../pipeline/mod.ts";
 * const p = new Pipeline()
 *   .addNode("t", "a").addNode("t", "b", {}, { host: "gpu" }).addNode("t", "c")
 *   .addInput("x", "a", "in")
 *   .connect("a", "out", "b", "in")
 *   .connect("b", "out", "c", "in");
 * const plan = planHosts(p);
 * console.log(plan.nodes); // Map(1) { "gpu" => [ "b" ] }
 * console.log(plan.bridges);
 * // [ { channel: "a.out", host: "gpu", direction: "out" },
 * //   { channel: "b.out", host: "gpu", direction: "in" } ]
 * ```
 */
export function planHosts(pipeline: Pipeline): HostPlan {
  const hosts = hostsById(pipeline);
  checkRemoteEdges(pipeline, hosts);
  const nodes = new Map<string, string[]>();
  for (const [id, h] of hosts) {
    const list = nodes.get(h);
    if (list) list.push(id);
    else nodes.set(h, [id]);
  }
  const bridges: BridgePlan[] = [];
  const outTo = (channel: string, readers: { node: string }[]): void => {
    const seen = new Set<string>();
    for (const r of readers) {
      const h = hosts.get(r.node);
      if (h === undefined || seen.has(h)) continue;
      seen.add(h);
      bridges.push({ channel, host: h, direction: "out" });
    }
  };
  for (const ch of pipeline.inputChannels()) outTo(ch.name, ch.readers);
  for (const ch of pipeline.channels()) {
    const producer = hosts.get(ch.source.node);
    if (producer === undefined) {
      outTo(ch.name, ch.readers);
      continue;
    }
    // Produced remotely: it crosses when something here reads it. Readers on
    // other remote hosts are remote_edge, refused above.
    const readLocally = ch.denoReads ||
      ch.readers.some((r) => !hosts.has(r.node));
    if (readLocally) {
      bridges.push({ channel: ch.name, host: producer, direction: "in" });
    }
  }
  return { nodes, bridges };
}
