import { assertThrows } from "./support/assert.ts";
// Tests of pipeline/ (mod.ts). The fixtures in tests/fixtures/pipelines/ are
// shared with python/tests/test_pipeline.py: ts_written.* are written by this
// file (UPDATE_FIXTURES=1 rewrites them), py_written.* by the Python tests,
// and validation/cases.json lists errors both languages must raise verbatim.
import assert from "node:assert/strict";
import {
  type NodeTypeInfo,
  Pipeline,
  type PipelineDefinition,
} from "../pipeline/mod.ts";
import { PipelineValidationError } from "../errors.ts";

const FIXTURES = new URL("./fixtures/pipelines/", import.meta.url);
const fixture = (name: string): URL => new URL(name, FIXTURES);
const UPDATE = Deno.env.get("UPDATE_FIXTURES") === "1";

/** The pipeline of ts_written.*; python/tests/test_pipeline.py builds the same. */
function buildA(): Pipeline {
  return new Pipeline("voice assistant")
    .addNode("audio.Resample", "resample", {
      rate: 16000,
      channels: 1,
      quality: "high",
    })
    .addNode("vad.Silero", "vad", {
      threshold: 0.25,
      min_silence_ms: 300,
      window: [512, 1024],
      "pad ms": -20,
    })
    .addNode("asr.Whisper", "asr", {
      model: "tiny.en",
      beams: 5,
      prompt:
        'Quotes " and \\ and\ttabs\nnewline, \u0001 control; unicode: héllo 日本 🎤',
      fp16: false,
      extra: { cache: { dir: "/tmp/x", size_mb: 512 }, empty: {} },
    })
    .addNode("llm.Chat", "llm", {
      stops: [{ text: "###", keep: false }, { text: "END", keep: true }],
      temperature: 0.75,
      nothing: [],
    })
    .addNode("text.Merge", "merge")
    .addInput("audio", "resample", "in")
    .addInput("audio", "vad", "raw")
    .connect("resample", "out", "vad", "in")
    .connect("resample", "out", "asr", "in")
    .connect("vad", "events", "asr", "control")
    .connect("asr", "out", "llm", "in")
    .connect("asr", "out", "merge", "in")
    .connect("llm", "out", "merge", "in")
    .addInput("prompt", "llm", "system")
    .addOutput("transcript", "asr", "out")
    .addOutput("reply", "merge", "out")
    .addOutput("speech_events", "vad", "events");
}

/** The pipeline of py_written.* (written by Python: 2.0 is a float there). */
function buildB(): Pipeline {
  return new Pipeline()
    .addNode("mic", "mic", {
      device: "default",
      gain: 2,
      eps: 1.5e-7,
      matrix: [[1, 2], [3]],
      mixed: [1, "two", true, { k: "v" }],
    })
    .addNode("vad", "vad", {})
    .addNode("sink", "sink")
    .connect("mic", "out", "vad", "in")
    .connect("vad", "out", "sink", "in")
    .addInput("control", "mic", "control")
    .addOutput("speech", "vad", "out")
    .addOutput("raw", "mic", "out");
}

function throwsCode(
  fn: () => unknown,
  code: string,
  message: string,
): PipelineValidationError {
  const caught = assertThrows(
    fn,
    PipelineValidationError,
  ) as PipelineValidationError;
  assert.equal(caught.code, code);
  assert.equal(caught.message, message);
  return caught;
}

async function loadRegistry(): Promise<Map<string, NodeTypeInfo>> {
  const raw = JSON.parse(await Deno.readTextFile(fixture("registry.json")));
  return new Map(Object.entries(raw.types as Record<string, NodeTypeInfo>));
}

Deno.test("TS-written fixtures are exactly what toToml/save write", async () => {
  const p = buildA();
  p.validate();
  if (UPDATE) {
    await p.save(fixture("ts_written.toml"));
    await p.save(fixture("ts_written.json"));
  }
  assert.equal(await Deno.readTextFile(fixture("ts_written.toml")), p.toToml());
  assert.equal(
    await Deno.readTextFile(fixture("ts_written.json")),
    JSON.stringify(p.toJSON(), null, 2) + "\n",
  );
});

Deno.test("JSON and TOML round trips keep the definition", async () => {
  for (const p of [buildA(), buildB()]) {
    const def = p.toJSON();
    assert.deepEqual(Pipeline.fromToml(p.toToml()).toJSON(), def);
    assert.deepEqual(Pipeline.fromJSON(JSON.stringify(def)).toJSON(), def);
    assert.deepEqual(Pipeline.fromJSON(def).toJSON(), def);
    const dir = await Deno.makeTempDir();
    try {
      for (const ext of ["json", "toml"]) {
        await p.save(`${dir}/p.${ext}`);
        assert.deepEqual(
          (await Pipeline.load(`${dir}/p.${ext}`)).toJSON(),
          def,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("Python-written fixtures load to the same definition", async () => {
  const expected = buildB().toJSON();
  for (const name of ["py_written.toml", "py_written.json"]) {
    const p = await Pipeline.load(fixture(name));
    assert.deepEqual(p.toJSON(), expected, name);
    p.validate();
  }
  // Floats are spelled as each language prints them (Python: 2.0 and
  // 1.5e-07, JavaScript: 2 and 1.5e-7); everything else is byte-identical.
  const pyToml = await Deno.readTextFile(fixture("py_written.toml"));
  assert.match(pyToml, /\ngain = 2\.0\neps = 1\.5e-07\n/);
  assert.equal(
    pyToml.replace("gain = 2.0", "gain = 2").replace("1.5e-07", "1.5e-7"),
    buildB().toToml(),
  );
});

Deno.test("a hand-written TOML file and its JSON twin load alike", async () => {
  const fromToml = await Pipeline.load(fixture("hand_written.toml"));
  const fromJson = await Pipeline.load(fixture("hand_written.json"));
  assert.deepEqual(fromToml.toJSON(), fromJson.toJSON());
  fromToml.validate({ registry: await loadRegistry() });
  assert.equal(fromToml.name, "hand written");
});

Deno.test("shared validation cases raise the same codes and messages", async () => {
  const registry = await loadRegistry();
  const cases = JSON.parse(
    await Deno.readTextFile(fixture("validation/cases.json")),
  ) as {
    file: string;
    registry: boolean;
    code: string | null;
    message: string | null;
  }[];
  assert.ok(cases.length >= 40);
  for (const c of cases) {
    const run = async (): Promise<void> => {
      const p = await Pipeline.load(fixture(`validation/${c.file}`));
      p.validate(c.registry ? { registry } : {});
    };
    if (c.code === null) {
      await run();
      continue;
    }
    const e = await run().then(
      () => assert.fail(`${c.file}: no error`),
      (e) => e,
    );
    assert.ok(e instanceof PipelineValidationError, `${c.file}: ${e}`);
    assert.equal(e.code, c.code, c.file);
    assert.equal(e.message, c.message, c.file);
  }
});

Deno.test("a registry given as a plain object works like a Map", async () => {
  const raw = JSON.parse(await Deno.readTextFile(fixture("registry.json")));
  const p = await Pipeline.load(fixture("validation/unknown_node_type.json"));
  throwsCode(
    () => p.validate({ registry: raw.types }),
    "unknown_node_type",
    'Node "b": type "whisper" is not in the registry (known types: asr, mic, mix, vad)',
  );
  // "constructor" is not a registered type even on a plain object.
  const q = new Pipeline().addNode("constructor", "a").addInput("x", "a", "in");
  throwsCode(
    () => q.validate({ registry: raw.types }),
    "unknown_node_type",
    'Node "a": type "constructor" is not in the registry (known types: asr, mic, mix, vad)',
  );
  throwsCode(
    () => q.validate({ registry: new Map() }),
    "unknown_node_type",
    'Node "a": type "constructor" is not in the registry (known types: none)',
  );
});

Deno.test("validation errors carry the node id", () => {
  const e = throwsCode(
    () =>
      new Pipeline().addNode("t", "a").addNode("t", "b").connect(
        "a",
        "out",
        "b",
        "in",
      ).connect("b", "out", "a", "in").addInput("x", "a", "in").validate(),
    "cycle",
    "Nodes form a cycle: a -> b -> a",
  );
  assert.equal(e.nodeId, "a");
  const u = throwsCode(
    () =>
      new Pipeline().addNode("t", "a").addNode("t", "lonely").addInput(
        "x",
        "a",
        "in",
      ).validate(),
    "unreachable_node",
    "No pipeline input reaches these nodes: lonely",
  );
  assert.equal(u.nodeId, "lonely");
});

Deno.test("builder methods reject bad names and values at once", () => {
  const p = new Pipeline();
  const rule =
    'use letters, digits, "_" and "-", starting with a letter or "_", at most 64 characters';
  throwsCode(
    () => p.addNode("t", "a b"),
    "invalid_name",
    `"a b" is not a valid node id: ${rule}`,
  );
  throwsCode(
    () => p.addNode("t", "x".repeat(65)),
    "invalid_name",
    `"${"x".repeat(65)}" is not a valid node id: ${rule}`,
  );
  p.addNode("t", "x".repeat(64));
  throwsCode(
    () => p.addNode("t", "in"),
    "invalid_name",
    '"in" is reserved (pipeline input channels are named in.<input>)',
  );
  throwsCode(
    () => p.addNode("", "a"),
    "invalid_schema",
    "node type: must not be empty",
  );
  throwsCode(
    // deno-lint-ignore no-explicit-any
    () => p.addNode("t", 3 as any),
    "invalid_schema",
    "Node id must be a string, got a number",
  );
  throwsCode(
    // deno-lint-ignore no-explicit-any
    () => p.addNode("t", "a", { x: { y: [null] } } as any),
    "invalid_schema",
    "config.x.y[0]: null is not allowed (config values are strings, numbers, booleans, arrays and tables)",
  );
  throwsCode(
    () => p.addNode("t", "a", { x: NaN }),
    "invalid_schema",
    "config.x: must be a finite number",
  );
  throwsCode(
    () => p.connect("a", "out", "b", "in.x"),
    "invalid_name",
    `"in.x" is not a valid port name: ${rule}`,
  );
  throwsCode(
    () => p.addInput("a-b.c", "a", "in"),
    "invalid_name",
    `"a-b.c" is not a valid input name: ${rule}`,
  );
  throwsCode(
    () => p.addOutput("", "a", "out"),
    "invalid_name",
    `"" is not a valid output name: ${rule}`,
  );
  // Nothing invalid was added.
  assert.deepEqual(p.toJSON().nodes.map((n) => n.id), ["x".repeat(64)]);
});

Deno.test("load errors: bad JSON, bad TOML with its line, unknown extension", async () => {
  const j = throwsCode(
    () => Pipeline.fromJSON("{"),
    "invalid_schema",
    "$: invalid JSON: " +
      (() => {
        try {
          JSON.parse("{");
        } catch (e) {
          return (e as Error).message;
        }
      })(),
  );
  assert.ok(j.cause instanceof SyntaxError);
  throwsCode(
    () => Pipeline.fromToml('version = 1\n\n[[nodes]]\nid = "a"\ntype = \n'),
    "invalid_schema",
    "$: invalid TOML at line 5, column 8: invalid value",
  );
  await assert.rejects(
    () => Pipeline.load(fixture("registry.yaml")),
    (e: unknown) =>
      e instanceof TypeError &&
      /use a \.json or \.toml file/.test(e.message),
  );
  await assert.rejects(
    () => buildA().save("/tmp/x.txt"),
    TypeError,
  );
  await assert.rejects(
    () => Pipeline.load(fixture("missing.toml")),
    Deno.errors.NotFound,
  );
});

Deno.test("definitions are copied in and out", () => {
  const config = { nested: { list: [1, 2] } };
  const p = new Pipeline().addNode("t", "a", config);
  config.nested.list.push(3);
  const def = p.toJSON();
  assert.deepEqual(def.nodes[0].config, { nested: { list: [1, 2] } });
  (def.nodes[0].config.nested as { list: number[] }).list.push(9);
  def.nodes.push({ id: "z", type: "t", config: {} });
  assert.deepEqual(p.toJSON().nodes, [
    { id: "a", type: "t", config: { nested: { list: [1, 2] } } },
  ]);
  const raw: PipelineDefinition = buildA().toJSON();
  const q = Pipeline.fromJSON(raw);
  raw.nodes[0].config.rate = 1;
  assert.equal(q.toJSON().nodes[0].config.rate, 16000);
  // "__proto__" is an ordinary config key, kept and not a prototype change.
  const r = Pipeline.fromJSON(
    '{"version":1,"nodes":[{"id":"a","type":"t","config":{"__proto__":{"x":1}}}]}',
  );
  const cfg = r.toJSON().nodes[0].config;
  assert.deepEqual(Object.keys(cfg), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(cfg), Object.prototype);
  assert.match(r.toToml(), /__proto__ = \{ x = 1 \}/);
});

Deno.test("missing optional fields load as empty, key order is fixed", () => {
  const p = Pipeline.fromToml(
    'version = 1\n\n[[nodes]]\nid = "a"\ntype = "t"\n',
  );
  assert.deepEqual(p.toJSON(), {
    version: 1,
    nodes: [{ id: "a", type: "t", config: {} }],
    connections: [],
    inputs: [],
    outputs: [],
  });
  assert.equal(p.name, undefined);
  assert.deepEqual(Object.keys(buildA().toJSON()), [
    "version",
    "name",
    "nodes",
    "connections",
    "inputs",
    "outputs",
  ]);
  assert.equal(new Pipeline().toToml(), "version = 1\n");
});

Deno.test("channels: one per read output port, with fan-out readers and Deno reads", () => {
  const p = buildA();
  assert.deepEqual(p.channels(), [
    {
      name: "resample.out",
      source: { node: "resample", port: "out" },
      readers: [{ node: "vad", port: "in" }, { node: "asr", port: "in" }],
      outputs: [],
      denoReads: false,
    },
    {
      name: "vad.events",
      source: { node: "vad", port: "events" },
      readers: [{ node: "asr", port: "control" }],
      outputs: ["speech_events"],
      denoReads: true,
    },
    {
      name: "asr.out",
      source: { node: "asr", port: "out" },
      readers: [{ node: "llm", port: "in" }, { node: "merge", port: "in" }],
      outputs: ["transcript"],
      denoReads: true,
    },
    {
      name: "llm.out",
      source: { node: "llm", port: "out" },
      readers: [{ node: "merge", port: "in" }],
      outputs: [],
      denoReads: false,
    },
    {
      name: "merge.out",
      source: { node: "merge", port: "out" },
      readers: [],
      outputs: ["reply"],
      denoReads: true,
    },
  ]);
  assert.deepEqual(p.inputChannels(), [
    {
      name: "in.audio",
      input: "audio",
      readers: [{ node: "resample", port: "in" }, { node: "vad", port: "raw" }],
    },
    {
      name: "in.prompt",
      input: "prompt",
      readers: [{ node: "llm", port: "system" }],
    },
  ]);
});

Deno.test("nodePorts gives the runner spec's inputs and outputs", () => {
  const p = buildA();
  assert.deepEqual(p.nodePorts("merge"), {
    inputs: { in: ["asr.out", "llm.out"] },
    outputs: { out: "merge.out" },
  });
  // vad.out is read by nothing, so it has no channel.
  assert.deepEqual(p.nodePorts("vad"), {
    inputs: { raw: ["in.audio"], in: ["resample.out"] },
    outputs: { events: "vad.events" },
  });
  assert.deepEqual(p.nodePorts("llm"), {
    inputs: { system: ["in.prompt"], in: ["asr.out"] },
    outputs: { out: "llm.out" },
  });
  throwsCode(
    () => p.nodePorts("nope"),
    "unknown_node",
    'No node "nope"',
  );
});

Deno.test("topologicalOrder puts readers after their sources", () => {
  assert.deepEqual(buildA().topologicalOrder(), [
    "resample",
    "vad",
    "asr",
    "llm",
    "merge",
  ]);
  const p = new Pipeline().addNode("t", "c").addNode("t", "b").addNode("t", "a")
    .connect("a", "out", "b", "in").connect("b", "out", "c", "in");
  assert.deepEqual(p.topologicalOrder(), ["a", "b", "c"]);
  // On a cycle the nodes on it are left out.
  p.connect("c", "out", "b", "in");
  assert.deepEqual(p.topologicalOrder(), ["a"]);
});
