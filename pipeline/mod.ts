/**
 * The pipeline builder: nodes, connections, named pipeline inputs and outputs,
 * validation before anything is spawned, and loading/saving as JSON or TOML
 * with one schema (see docs/pipeline-schema.md; the Python package
 * `remotemedia_multiprocess.pipeline` implements the same schema, rules and
 * messages).
 *
 * @example Build, validate and save a pipeline
 * ```ts
 * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
 *
 * const p = new Pipeline("voice")
 *   .addNode("vad", "vad", { threshold: 0.5 })
 *   .addNode("whisper_like", "asr")
 *   .connect("vad", "out", "asr", "in")
 *   .addInput("audio", "vad", "in")
 *   .addOutput("text", "asr", "out");
 * p.validate();
 * console.log(p.toToml());
 * ```
 *
 * @module
 */

export { Pipeline } from "./pipeline.ts";
export type {
  AddNodeOptions,
  ConfigValue,
  ConnectionDefinition,
  InputChannel,
  InputDefinition,
  NodeConfig,
  NodeDefinition,
  NodePorts,
  NodeRegistry,
  NodeTypeInfo,
  OutputDefinition,
  PipelineChannel,
  PipelineDefinition,
  PortRef,
  RestartPolicy,
  ValidateOptions,
} from "./schema.ts";
