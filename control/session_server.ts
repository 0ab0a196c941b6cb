/**
 * A session driven over JSON lines on stdin/stdout, for the Python client
 * (`remotemedia_multiprocess.client.Session`).
 *
 * In: `{"type":"create","pipeline":{...},"modules":[...],"module_paths":[...],"config":{...}}`,
 * then `{"type":"close"}`. Out: `{"type":"progress",...}` lines, then
 * `{"type":"ready","prefix","root","capacity","max_subscribers","inputs","outputs"}`
 * or `{"type":"error","name","message"}`; after ready, a session failure (a
 * node crashed) is `{"type":"failed","name","message"}`, and a node's
 * `process()` raising (the node keeps running) is
 * `{"type":"process_error","node_id","message","traceback"}`: this program
 * listens for every such error, so the client is the one that reports it.
 * Node logs go to stderr. On stdin
 * EOF the session is closed and the program exits, so a dead client leaves
 * nothing running.
 *
 * The client moves data itself over the session's shared-memory channels;
 * this program drains its own output subscribers so they never hold chunks.
 *
 * @example
 * ```sh
 * echo '{"type":"close"}' | deno run -A control/session_server.ts
 * ```
 *
 * @module
 */
import {
  MultiprocessExecutor,
  type NodeProcessError,
  Pipeline,
  type RuntimeConfigOptions,
  type Session,
} from "../mod.ts";

const encoder = new TextEncoder();

function emit(message: Record<string, unknown>): void {
  // Synchronous so lines never interleave and the order is kept.
  const bytes = encoder.encode(JSON.stringify(message) + "\n");
  let written = 0;
  while (written < bytes.length) {
    written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}

function errorMessage(e: unknown): Record<string, unknown> {
  const err = e instanceof Error ? e : new Error(String(e));
  return { type: "error", name: err.name, message: err.message };
}

async function* lines(): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of Deno.stdin.readable) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (buffer.trim()) yield buffer.trim();
}

interface CreateMessage {
  type: "create";
  pipeline: unknown;
  modules?: string[];
  module_paths?: string[];
  config?: RuntimeConfigOptions;
}

let executor: MultiprocessExecutor | undefined;
let session: Session | undefined;
let creating: Promise<void> | undefined;

async function create(m: CreateMessage): Promise<void> {
  try {
    const pipeline = Pipeline.fromJSON(m.pipeline);
    executor = new MultiprocessExecutor(m.config ?? {});
    session = await executor.createSession(pipeline, {
      modules: m.modules ?? [],
      modulePaths: m.module_paths ?? [],
      onProgress: (event) => emit({ type: "progress", ...event }),
    });
    session.addEventListener("error", (e) => {
      const error = (e as CustomEvent<NodeProcessError>).detail;
      emit({
        type: "process_error",
        node_id: error.nodeId,
        message: error.message,
        traceback: error.traceback,
      });
    });
    session.addEventListener("failed", (e) => {
      const error = (e as CustomEvent<Error>).detail;
      emit({ type: "failed", name: error.name, message: error.message });
    });
    await session.initialize();
    const inputs: Record<string, string> = {};
    for (const i of pipeline.inputChannels()) inputs[i.input] = i.name;
    const outputs: Record<string, string> = {};
    for (const c of pipeline.channels()) {
      for (const o of c.outputs) outputs[o] = c.name;
    }
    for (const name of Object.keys(outputs)) drain(session, name);
    const iso = session.isolation;
    emit({
      type: "ready",
      prefix: iso.prefix,
      root: iso.root,
      capacity: executor.config.channelCapacity,
      max_subscribers: 8,
      max_payload_bytes: executor.config.maxPayloadBytes,
      inputs,
      outputs,
    });
  } catch (e) {
    emit(errorMessage(e));
    await shutdown();
  }
}

/** Takes and drops every sample Deno's own subscriber gets (the client has its own). */
async function drain(s: Session, name: string): Promise<void> {
  try {
    for await (const _sample of s.receive(name)) {
      // Released when the loop asks for the next one.
    }
  } catch {
    // The session failed or closed: nothing more to drain.
  }
}

async function shutdown(): Promise<void> {
  try {
    await session?.close();
    await executor?.close();
  } catch (e) {
    console.error(`session_server: close failed: ${e}`);
  }
}

for await (const line of lines()) {
  let m: { type?: string };
  try {
    m = JSON.parse(line);
  } catch {
    emit({
      type: "error",
      name: "ProtocolError",
      message: `bad JSON: ${line}`,
    });
    continue;
  }
  if (m.type === "create") {
    if (creating) {
      emit({
        type: "error",
        name: "ProtocolError",
        message: "session already created",
      });
      continue;
    }
    creating = create(m as CreateMessage);
  } else if (m.type === "close") {
    break;
  } else {
    emit({
      type: "error",
      name: "ProtocolError",
      message: `unknown message type ${JSON.stringify(m.type)}`,
    });
  }
}
// Closing while create() is still spawning: close what exists, then whatever
// create() goes on to make.
await shutdown();
await creating?.catch(() => {});
await shutdown();
emit({ type: "closed" });
Deno.exit(0);
