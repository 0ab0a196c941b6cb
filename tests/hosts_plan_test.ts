// Tests of control/_hosts.ts (placement of nodes on hosts: checkHosts and
// planHosts) and of the `host` key of pipeline nodes in the TS builder.
import assert from "node:assert/strict";
import { checkHosts, planHosts } from "../control/_hosts.ts";
import { resolveConfig, type RuntimeConfig } from "../control/config.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import { PipelineValidationError } from "../errors.ts";
import { Pipeline } from "../pipeline/mod.ts";

function config(...names: string[]): RuntimeConfig {
  return resolveConfig({}, {
    hosts: Object.fromEntries(
      names.map((n, i) => [n, { endpoint: `tcp/10.0.0.${i + 2}:7447` }]),
    ),
  });
}

function throwsCode(
  fn: () => unknown,
  code: string,
  message: string,
  nodeId: string,
): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PipelineValidationError, String(e));
    assert.equal(e.code, code);
    assert.equal(e.message, message);
    assert.equal(e.nodeId, nodeId);
    return true;
  });
}

Deno.test("all nodes local: an empty plan", () => {
  const p = new Pipeline()
    .addNode("t", "a")
    .addNode("t", "b", {}, { host: "local" })
    .addInput("x", "a", "in")
    .connect("a", "out", "b", "in")
    .addOutput("y", "b", "out");
  checkHosts(p, config());
  const plan = planHosts(p);
  assert.deepEqual(plan.nodes, new Map());
  assert.deepEqual(plan.bridges, []);
});

Deno.test("a -> b@gpu -> c: a.out goes out to gpu, b.out comes in", () => {
  const p = new Pipeline()
    .addNode("t", "a")
    .addNode("t", "b", {}, { host: "gpu" })
    .addNode("t", "c")
    .addInput("x", "a", "in")
    .connect("a", "out", "b", "in")
    .connect("b", "out", "c", "in")
    .addOutput("y", "c", "out");
  checkHosts(p, config("gpu"));
  const plan = planHosts(p);
  assert.deepEqual(plan.nodes, new Map([["gpu", ["b"]]]));
  assert.deepEqual(plan.bridges, [
    { channel: "a.out", host: "gpu", direction: "out" },
    { channel: "b.out", host: "gpu", direction: "in" },
  ]);
});

Deno.test("a pipeline input read by a remote node crosses out", () => {
  const p = new Pipeline()
    .addNode("t", "asr", {}, { host: "gpu" })
    .addNode("t", "vad")
    .addInput("audio", "asr", "in")
    .addInput("audio", "vad", "in")
    .connect("asr", "out", "vad", "text");
  const plan = planHosts(p);
  assert.deepEqual(plan.nodes, new Map([["gpu", ["asr"]]]));
  assert.deepEqual(plan.bridges, [
    { channel: "in.audio", host: "gpu", direction: "out" },
    { channel: "asr.out", host: "gpu", direction: "in" },
  ]);
});

Deno.test("a pipeline output of a remote node crosses in", () => {
  const p = new Pipeline()
    .addNode("t", "a", {}, { host: "gpu" })
    .addNode("t", "b", {}, { host: "gpu" })
    .addInput("x", "a", "in")
    .connect("a", "out", "b", "in")
    .addOutput("y", "b", "out");
  const plan = planHosts(p);
  assert.deepEqual(plan.nodes, new Map([["gpu", ["a", "b"]]]));
  // a.out stays on gpu; only the input and the output cross.
  assert.deepEqual(plan.bridges, [
    { channel: "in.x", host: "gpu", direction: "out" },
    { channel: "b.out", host: "gpu", direction: "in" },
  ]);
});

Deno.test("a local channel read on two remote hosts: two bridges, one per host", () => {
  const p = new Pipeline()
    .addNode("t", "src")
    .addNode("t", "g1", {}, { host: "gpu" })
    .addNode("t", "e1", {}, { host: "edge" })
    .addNode("t", "g2", {}, { host: "gpu" })
    .addNode("t", "sink")
    .addInput("x", "src", "in")
    .connect("src", "out", "g1", "in")
    .connect("src", "out", "e1", "in")
    .connect("src", "out", "g2", "in") // same host again: no second bridge
    .connect("src", "out", "sink", "in"); // a local reader: no bridge
  checkHosts(p, config("gpu", "edge"));
  const plan = planHosts(p);
  assert.deepEqual(
    plan.nodes,
    new Map([["gpu", ["g1", "g2"]], ["edge", ["e1"]]]),
  );
  assert.deepEqual([...plan.nodes.keys()], ["gpu", "edge"]);
  assert.deepEqual(plan.bridges, [
    { channel: "src.out", host: "gpu", direction: "out" },
    { channel: "src.out", host: "edge", direction: "out" },
  ]);
});

Deno.test("a remote node feeding its own host crosses only when read here too", () => {
  const base = (): Pipeline =>
    new Pipeline()
      .addNode("t", "a")
      .addNode("t", "b", {}, { host: "gpu" })
      .addNode("t", "c", {}, { host: "gpu" })
      .addInput("x", "a", "in")
      .connect("a", "out", "b", "in")
      .connect("b", "out", "c", "in");
  // b.out is read on gpu only: no bridge for it.
  assert.deepEqual(planHosts(base()).bridges, [
    { channel: "a.out", host: "gpu", direction: "out" },
  ]);
  // Read by a local node too: one bridge in (not one per reader).
  const local = base().addNode("t", "d").connect("b", "out", "d", "in");
  assert.deepEqual(planHosts(local).bridges, [
    { channel: "a.out", host: "gpu", direction: "out" },
    { channel: "b.out", host: "gpu", direction: "in" },
  ]);
  // Read by Deno (a pipeline output) too, and by a local node: still one.
  const both = base().addNode("t", "d").connect("b", "out", "d", "in")
    .addOutput("y", "b", "out");
  assert.deepEqual(planHosts(both).bridges, [
    { channel: "a.out", host: "gpu", direction: "out" },
    { channel: "b.out", host: "gpu", direction: "in" },
  ]);
});

Deno.test("unknown_host names the node and the configured hosts", () => {
  const p = new Pipeline()
    .addNode("t", "a", {}, { host: "local" })
    .addNode("t", "b", {}, { host: "gpu" })
    .addInput("x", "a", "in")
    .connect("a", "out", "b", "in");
  throwsCode(
    () => checkHosts(p, config()),
    "unknown_host",
    'Node "b": host "gpu" is not configured (configured: none; add [multiprocess.hosts.gpu] with endpoint = "tcp/<address>:7447" to runtime.toml, or hosts in code)',
    "b",
  );
  throwsCode(
    () => checkHosts(p, config("edge", "lab")),
    "unknown_host",
    'Node "b": host "gpu" is not configured (configured: edge, lab; add [multiprocess.hosts.gpu] with endpoint = "tcp/<address>:7447" to runtime.toml, or hosts in code)',
    "b",
  );
  // A name inherited from Object.prototype is not a configured host.
  const q = new Pipeline().addNode("t", "a", {}, { host: "constructor" })
    .addInput("x", "a", "in");
  throwsCode(
    () => checkHosts(q, config("gpu")),
    "unknown_host",
    'Node "a": host "constructor" is not configured (configured: gpu; add [multiprocess.hosts.constructor] with endpoint = "tcp/<address>:7447" to runtime.toml, or hosts in code)',
    "a",
  );
  checkHosts(p, config("gpu"));
});

Deno.test("remote_edge: a connection between two different remote hosts", () => {
  const p = new Pipeline()
    .addNode("t", "a")
    .addNode("t", "asr", {}, { host: "gpu" })
    .addNode("t", "tts", {}, { host: "edge" })
    .addInput("x", "a", "in")
    .connect("a", "out", "asr", "in")
    .connect("asr", "out", "tts", "in");
  const message =
    'Connection asr.out -> tts.in: nodes "asr" (host "gpu") and "tts" (host "edge") are on two different remote hosts, which this version cannot connect; place one of them on the local host (no host, or host = "local")';
  throwsCode(
    () => checkHosts(p, config("gpu", "edge")),
    "remote_edge",
    message,
    "tts",
  );
  throwsCode(() => planHosts(p), "remote_edge", message, "tts");
  // unknown_host is checked first.
  assert.throws(
    () => checkHosts(p, config("gpu")),
    (e: unknown) =>
      e instanceof PipelineValidationError && e.code === "unknown_host",
  );
});

Deno.test("the builder's host option round-trips through JSON and TOML", () => {
  const p = new Pipeline()
    .addNode("t", "a", { k: 1 }, { env: "np1", host: "gpu" })
    .addNode("t", "b", {}, { host: "local" })
    .addNode("t", "c")
    .addInput("x", "a", "in");
  const def = p.toJSON();
  assert.deepEqual(def.nodes.map((n) => n.host), ["gpu", "local", undefined]);
  assert.ok(!("host" in def.nodes[2]));
  assert.deepEqual(
    Object.keys(def.nodes[0]),
    ["id", "type", "config", "env", "host"],
  );
  assert.deepEqual(Pipeline.fromJSON(JSON.stringify(def)).toJSON(), def);
  const toml = p.toToml();
  assert.match(toml, /type = "t"\nenv = "np1"\nhost = "gpu"\n/);
  assert.deepEqual(Pipeline.fromToml(toml).toJSON(), def);
  assert.throws(
    () => new Pipeline().addNode("t", "a", {}, { host: "gpu.lab" }),
    (e: unknown) =>
      e instanceof PipelineValidationError && e.code === "invalid_name" &&
      e.message ===
        'host: "gpu.lab" is not a valid host name: use letters, digits, "_" and "-", starting with a letter or "_", at most 64 characters',
  );
});

Deno.test("createSession refuses an unknown host before anything runs", async () => {
  await using ex = new MultiprocessExecutor({
    forkServer: false,
    handleSignals: false,
    typeCacheDir: false,
    hosts: { edge: { endpoint: "tcp/10.0.0.2:7447" } },
  });
  const p = new Pipeline().addNode("t", "a", {}, { host: "gpu" })
    .addInput("x", "a", "in");
  await assert.rejects(
    () => ex.createSession(p),
    (e: unknown) =>
      e instanceof PipelineValidationError && e.code === "unknown_host" &&
      e.nodeId === "a" && e.message.includes("(configured: edge;"),
  );
  assert.equal(ex.sessions.length, 0);
});
