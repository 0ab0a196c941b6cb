/**
 * Node modules the runner cannot import, folders that do not exist and a
 * forgotten `modules` option: what `createSession` and `listNodeTypes` say
 * (issue 7, defect 3). Real runner processes, nothing mocked.
 */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import { NodeModuleError, PipelineValidationError } from "../errors.ts";
import { Pipeline } from "../pipeline/mod.ts";

const root = new URL("..", import.meta.url).pathname;
const examples = `${root}examples/nodes`;
const testNodes = `${root}python/tests/nodes`;
const python = `${root}.venv/bin/python`;

function executor(): MultiprocessExecutor {
  return new MultiprocessExecutor({
    python: { executable: python },
    initTimeoutSecs: 30,
  });
}

function single(type: string): Pipeline {
  return new Pipeline().addNode(type, "n").addInput("in", "n", "in")
    .addOutput("out", "n", "out");
}

Deno.test("one module failing to import fails the session even when the types are found", async () => {
  await using ex = executor();
  const error = await assertRejects(
    () =>
      ex.createSession(single("echo"), {
        modules: ["demo_nodes", "half_broken_module"],
        modulePaths: [examples, testNodes],
        printLogs: false,
      }),
    NodeModuleError,
  ) as NodeModuleError;
  assertEquals(
    error.message,
    'Cannot import node module "half_broken_module": RuntimeError: half-way ' +
      `through the import on purpose (at ${testNodes}/half_broken_module.py:12)\n` +
      `Module folders searched: ${examples}, ${testNodes}, then the Python path.`,
  );
  assertEquals(error.failures.map((f) => f.module), ["half_broken_module"]);
  assert(error.failures[0].traceback.includes("half_broken_module.py"));
  assertEquals(error.missingPaths, []);
  assertEquals(ex.sessions.length, 0, "nothing was spawned");
});

Deno.test("a module folder that does not exist is named and said not to exist", async () => {
  await using ex = executor();
  const typo = `${root}examples/nodez`;
  const error = await assertRejects(
    () =>
      ex.createSession(single("echo"), {
        modules: ["demo_nodes"],
        modulePaths: [typo],
        printLogs: false,
      }),
    NodeModuleError,
  ) as NodeModuleError;
  assertEquals(
    error.message,
    "Cannot import node module \"demo_nodes\": ModuleNotFoundError: No module named 'demo_nodes' " +
      "(not found in the module folders or on the Python path)\n" +
      `Module folders searched: ${typo} (does not exist), then the Python path.\n` +
      'Node type "echo" is not registered.',
  );
  assertEquals(error.missingPaths, [typo]);
  assert(error.failures[0].notFound);
});

Deno.test("several failing modules are each named with their error", async () => {
  await using ex = executor();
  const error = await assertRejects(
    () =>
      ex.createSession(single("echo"), {
        modules: ["missing_dependency_module", "demo_nodes", "broken_module"],
        modulePaths: [examples, testNodes],
        printLogs: false,
      }),
    NodeModuleError,
  );
  assertEquals(
    error.message,
    'Cannot import node modules "missing_dependency_module", "broken_module":\n' +
      "  missing_dependency_module: ModuleNotFoundError: No module named " +
      `'remotemedia_no_such_dependency' (at ${testNodes}/missing_dependency_module.py:3)\n` +
      "  broken_module: ImportError: this module is broken on purpose " +
      `(at ${testNodes}/broken_module.py:3)\n` +
      `Module folders searched: ${examples}, ${testNodes}, then the Python path.`,
  );
});

Deno.test("a forgotten modules option is said, not just 'known types: none'", async () => {
  await using ex = executor();
  const error = await assertRejects(
    () =>
      ex.createSession(single("echo"), {
        modulePaths: [examples],
        printLogs: false,
      }),
    PipelineValidationError,
  ) as PipelineValidationError;
  assertEquals(error.code, "unknown_node_type");
  assertEquals(
    error.message,
    'Node "n": type "echo" is not in the registry (known types: none). ' +
      "No node modules were given: list the modules that register your node types in `modules`. " +
      `Module folders searched: ${examples}, then the Python path.`,
  );
  assertEquals(error.nodeId, "n");
});

Deno.test("an unknown type names the modules imported and the folders", async () => {
  await using ex = executor();
  const error = await assertRejects(
    () =>
      ex.createSession(single("whisper"), {
        modules: ["demo_nodes"],
        modulePaths: [examples, `${root}no_such_folder`],
        printLogs: false,
      }),
    PipelineValidationError,
  );
  assert(error.message.includes('type "whisper" is not in the registry'));
  assert(
    error.message.endsWith(
      "Imported modules: demo_nodes. Module folders searched: " +
        `${examples}, ${root}no_such_folder (does not exist), then the Python path.`,
    ),
    error.message,
  );
});

Deno.test("listNodeTypes reports the failures and the folders", async () => {
  await using ex = executor();
  const listing = await ex.listNodeTypes({
    modules: ["demo_nodes", "broken_module", "nope_module"],
    modulePaths: [examples, testNodes, `${root}no_such_folder`],
  });
  assert(listing.types.has("echo"));
  assertEquals(listing.modulePaths, [
    examples,
    testNodes,
    `${root}no_such_folder`,
  ]);
  assertEquals(listing.missingPaths, [`${root}no_such_folder`]);
  assertEquals(
    listing.errors.map((f) => [f.module, f.notFound, f.location]),
    [
      ["broken_module", false, `${testNodes}/broken_module.py:3`],
      ["nope_module", true, undefined],
    ],
  );
});

Deno.test("a module fixed after a failed import is picked up by the same executor", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rmp-node-types-" });
  try {
    const file = `${dir}/fixable_nodes.py`;
    await Deno.writeTextFile(file, 'raise ImportError("not yet")\n');
    await using ex = executor();
    const options = {
      modules: ["fixable_nodes"],
      modulePaths: [dir],
      printLogs: false,
    };
    await assertRejects(
      () => ex.createSession(single("echo"), options),
      NodeModuleError,
      "not yet",
    );
    await Deno.writeTextFile(
      file,
      "from remotemedia_multiprocess.node import MultiprocessNode, register_node\n\n\n" +
        '@register_node("echo")\nclass Echo(MultiprocessNode):\n' +
        "    def process(self, data):\n        return data\n",
    );
    await using session = await ex.createSession(single("echo"), options);
    await session.initialize();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
