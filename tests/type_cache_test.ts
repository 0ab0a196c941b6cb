/**
 * The node type cache (issue 9, part 3): a session start whose modules were
 * listed before spawns no `--list-types` process, across executors through
 * the cache folder; a changed module file invalidates it. Real Python: the
 * interpreter is a wrapper script that logs each `--list-types` run.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import { Pipeline } from "../pipeline/mod.ts";

const root = new URL("..", import.meta.url).pathname;
const python = `${root}.venv/bin/python`;

const nodeSource = (outputs: string) =>
  "from remotemedia_multiprocess.node import MultiprocessNode, register_node\n\n\n" +
  '@register_node("cached_echo")\nclass CachedEcho(MultiprocessNode):\n' +
  `    outputs = ${outputs}\n\n` +
  "    def process(self, data):\n        return data\n";

/** A temp folder with a node module, a logging interpreter wrapper and a
 * cache folder. */
async function fixture(): Promise<{
  dir: string;
  wrapper: string;
  cacheDir: string;
  module: string;
  listings: () => Promise<number>;
}> {
  const dir = await Deno.makeTempDir({ prefix: "rmp-type-cache-" });
  const log = `${dir}/listings.log`;
  const wrapper = `${dir}/python`;
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh\ncase " $* " in *" --list-types "*) echo x >> "${log}";; esac\n` +
      `exec "${python}" "$@"\n`,
  );
  await Deno.chmod(wrapper, 0o755);
  const module = `${dir}/cached_nodes.py`;
  await Deno.writeTextFile(module, nodeSource('("out",)'));
  const listings = async () => {
    try {
      return (await Deno.readTextFile(log)).split("\n").filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  return { dir, wrapper, cacheDir: `${dir}/cache`, module, listings };
}

function single(): Pipeline {
  return new Pipeline().addNode("cached_echo", "n").addInput("in", "n", "in")
    .addOutput("out", "n", "out");
}

Deno.test("a cached listing spawns no --list-types process, in a new executor too", async () => {
  const f = await fixture();
  try {
    const options = {
      modules: ["cached_nodes"],
      modulePaths: [f.dir],
      printLogs: false,
    };
    const make = () =>
      new MultiprocessExecutor({
        python: { executable: f.wrapper },
        typeCacheDir: f.cacheDir,
        initTimeoutSecs: 60,
      });
    {
      await using ex = make();
      await using session = await ex.createSession(single(), options);
      await session.initialize();
      assertEquals(await f.listings(), 1);
      await (await ex.createSession(single(), options)).close();
      assertEquals(await f.listings(), 1, "the memory cache answered");
    }
    const files = [...Deno.readDirSync(f.cacheDir)].map((e) => e.name);
    assertEquals(files.length, 1, `one cache file: ${files}`);
    {
      await using ex = make();
      await using session = await ex.createSession(single(), options);
      await session.initialize();
      assertEquals(await f.listings(), 1, "the cache folder answered");
    }
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("a changed module file invalidates the cache (memory and folder)", async () => {
  const f = await fixture();
  try {
    const options = { modules: ["cached_nodes"], modulePaths: [f.dir] };
    const make = () =>
      new MultiprocessExecutor({
        python: { executable: f.wrapper },
        typeCacheDir: f.cacheDir,
      });
    await using ex = make();
    let listing = await ex.listNodeTypes(options);
    assertEquals(listing.types.get("cached_echo")?.outputs, ["out"]);
    assertEquals(await f.listings(), 1);
    await Deno.writeTextFile(f.module, nodeSource('("out", "extra")'));
    listing = await ex.listNodeTypes(options);
    assertEquals(listing.types.get("cached_echo")?.outputs, ["out", "extra"]);
    assertEquals(await f.listings(), 2, "the memory entry was stale");
    // Another executor reads the folder's entry, which the change replaced.
    await using other = make();
    listing = await other.listNodeTypes(options);
    assertEquals(listing.types.get("cached_echo")?.outputs, ["out", "extra"]);
    assertEquals(await f.listings(), 2);
    await Deno.writeTextFile(f.module, nodeSource('("out",)'));
    listing = await other.listNodeTypes(options);
    assertEquals(listing.types.get("cached_echo")?.outputs, ["out"]);
    assertEquals(await f.listings(), 3, "the folder's entry was stale");
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("a module a node module imports is part of the key", async () => {
  const f = await fixture();
  try {
    await Deno.writeTextFile(
      `${f.dir}/helper_ports.py`,
      'OUTPUTS = ("out",)\n',
    );
    await Deno.writeTextFile(
      f.module,
      nodeSource("helper_ports.OUTPUTS").replace(
        "from remotemedia",
        "import helper_ports\nfrom remotemedia",
      ),
    );
    await using ex = new MultiprocessExecutor({
      python: { executable: f.wrapper },
      typeCacheDir: f.cacheDir,
    });
    const options = { modules: ["cached_nodes"], modulePaths: [f.dir] };
    assertEquals(
      (await ex.listNodeTypes(options)).types.get("cached_echo")?.outputs,
      ["out"],
    );
    await Deno.writeTextFile(
      `${f.dir}/helper_ports.py`,
      'OUTPUTS = ("out", "b")\n',
    );
    assertEquals(
      (await ex.listNodeTypes(options)).types.get("cached_echo")?.outputs,
      ["out", "b"],
    );
    assertEquals(await f.listings(), 2);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("typeCacheDir false keeps nothing on disk", async () => {
  const f = await fixture();
  try {
    await using ex = new MultiprocessExecutor({
      python: { executable: f.wrapper },
      typeCacheDir: false,
    });
    const options = { modules: ["cached_nodes"], modulePaths: [f.dir] };
    await ex.listNodeTypes(options);
    await ex.listNodeTypes(options);
    assertEquals(await f.listings(), 1);
    let exists = true;
    try {
      Deno.statSync(f.cacheDir);
    } catch {
      exists = false;
    }
    assert(!exists);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});
