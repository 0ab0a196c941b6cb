/**
 * The spec file the executor writes for each runner
 * (docs/runner-protocol.md; fields in protocol/contracts.toml).
 *
 * @module
 */
import {
  CHANNEL_DEFAULT_MAX_SUBSCRIBERS,
  RUNNER_SPEC_VERSION,
  type RunnerSpec,
} from "../protocol/contracts.ts";
import type { Isolation } from "../data/isolation.ts";
import type { Pipeline } from "../pipeline/mod.ts";
import type { RuntimeConfig } from "./config.ts";

/** What a session knows when it writes its runners' specs. */
export interface SpecContext {
  sessionId: string;
  pipeline: Pipeline;
  config: RuntimeConfig;
  isolation: Isolation;
  controlSocket: string;
  modules: string[];
  modulePaths: string[];
}

/** The spec of node `nodeId` (its `restart_attempt`-th restart; 0: first start). */
export function runnerSpec(
  ctx: SpecContext,
  nodeId: string,
  restartAttempt = 0,
): RunnerSpec {
  const def = ctx.pipeline.toJSON().nodes.find((n) => n.id === nodeId);
  if (!def) throw new RangeError(`The pipeline has no node "${nodeId}"`);
  const ports = ctx.pipeline.nodePorts(nodeId);
  return {
    version: RUNNER_SPEC_VERSION,
    node_id: nodeId,
    node_type: def.type,
    config: def.config ?? {},
    module_paths: ctx.modulePaths,
    modules: ctx.modules,
    session_id: ctx.sessionId,
    iox_prefix: ctx.isolation.prefix,
    iox_root: ctx.isolation.root,
    control_socket: ctx.controlSocket,
    inputs: ports.inputs,
    outputs: ports.outputs,
    channel_capacity: ctx.config.channelCapacity,
    max_subscribers: CHANNEL_DEFAULT_MAX_SUBSCRIBERS,
    max_payload_bytes: ctx.config.maxPayloadBytes,
    publish_timeout_secs: ctx.config.publishTimeoutSecs,
    restart_attempt: restartAttempt,
  };
}

/** Writes node `nodeId`'s spec for its `restartAttempt`-th start; returns the path. */
export function writeRunnerSpec(
  ctx: SpecContext,
  nodeId: string,
  restartAttempt = 0,
): string {
  const path = `${ctx.isolation.root}spec-${nodeId}.json`;
  Deno.writeTextFileSync(
    path,
    JSON.stringify(runnerSpec(ctx, nodeId, restartAttempt)),
  );
  return path;
}

/** Writes every node's spec into the isolation root; returns the paths. */
export function writeRunnerSpecs(ctx: SpecContext): Map<string, string> {
  const specs = new Map<string, string>();
  for (const node of ctx.pipeline.toJSON().nodes) {
    specs.set(node.id, writeRunnerSpec(ctx, node.id));
  }
  return specs;
}
