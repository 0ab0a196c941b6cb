/**
 * `@remotemedia/multiprocess` runs the Python nodes of a real-time media
 * pipeline in separate processes (each with its own GIL) and moves audio,
 * video, text and tensors between Deno and those processes through iceoryx2
 * shared memory, without copying.
 *
 * - {@linkcode MultiprocessExecutor} and {@linkcode Session}: run a
 *   {@linkcode Pipeline}, with start-up progress and crash handling.
 * - {@linkcode ChannelContext}: the zero-copy channels underneath.
 * - RuntimeData builders ({@linkcode audio}, {@linkcode video},
 *   {@linkcode text}, {@linkcode tensor}, {@linkcode json},
 *   {@linkcode binary}) and the codec ({@linkcode encode}, {@linkcode decode}).
 *
 * @example
 * ```ts ignore
 * import { MultiprocessExecutor, Pipeline, text } from "@remotemedia/multiprocess";
 * const pipeline = new Pipeline()
 *   .addNode("echo", "e")
 *   .addInput("in", "e", "in")
 *   .addOutput("out", "e", "out");
 * await using executor = new MultiprocessExecutor();
 * await using session = await executor.createSession(pipeline, {
 *   modules: ["demo_nodes"],
 *   modulePaths: ["examples/nodes"],
 * });
 * await session.initialize();
 * await session.send("in", text("hello"));
 * for await (const sample of session.receive("out")) {
 *   console.log(sample.data);
 *   break;
 * }
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export * from "./data/runtime_data/mod.ts";
export * from "./data/channel/mod.ts";
export * from "./pipeline/mod.ts";
export * from "./control/config.ts";
export * from "./control/session.ts";
export * from "./control/executor.ts";
export { monotonicNs } from "./data/native.ts";
export { MAX_LOG_LINE_BYTES, type NodeExit } from "./control/node_process.ts";
export {
  type Isolation,
  leftovers,
  newIsolation,
  removeIsolation,
} from "./data/isolation.ts";
