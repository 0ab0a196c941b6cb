/**
 * Node processes get a minimal environment (control/_node_env.ts) and import
 * node code only from the configured folders; a session's files are
 * owner-only. Each against real runners, forked and spawned.
 */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { executor, root, single } from "./support/sessions.ts";
import { NodeModuleError } from "../errors.ts";
import { Pipeline } from "../pipeline/mod.ts";
import { text, type TextData } from "../data/runtime_data/mod.ts";

interface Report {
  environ: Record<string, string>;
  path: string[];
  imports: Record<string, boolean>;
}

async function report(forkServer: boolean, cwd: string): Promise<Report> {
  await using ex = executor({
    forkServer,
    python: {
      executable: `${root}.venv/bin/python`,
      env: { GIVEN_BY_CONFIG: "yes" },
    },
  });
  const pipeline = new Pipeline()
    .addNode("env_report", "n", { probe: "rmp_cwd_probe_mod" })
    .addInput("in", "n", "in").addOutput("out", "n", "out");
  const before = Deno.cwd();
  Deno.chdir(cwd);
  try {
    await using session = await ex.createSession(pipeline, {
      modules: ["bad_nodes"],
      modulePaths: [`${root}reliability/nodes`],
      printLogs: false,
    });
    await session.initialize();
    await session.send("in", text("x"));
    for await (const s of session.receive("out", { timeoutMs: 15_000 })) {
      return JSON.parse((s.data as TextData).text);
    }
    throw new Error("no report");
  } finally {
    Deno.chdir(before);
  }
}

for (const forkServer of [true, false]) {
  const how = forkServer ? "forked" : "spawned";
  Deno.test(`${how} runners: only the minimal environment plus python.env; the working folder is not importable`, async () => {
    const cwd = await Deno.makeTempDir({ prefix: "rmp_env_" });
    await Deno.writeTextFile(`${cwd}/rmp_cwd_probe_mod.py`, "X = 1\n");
    Deno.env.set("RMP_TEST_SECRET_TOKEN", "hunter2");
    try {
      const r = await report(forkServer, cwd);
      assertEquals(r.environ.RMP_TEST_SECRET_TOKEN, undefined);
      assertEquals(r.environ.GIVEN_BY_CONFIG, "yes");
      assertEquals(r.environ.PATH, Deno.env.get("PATH"));
      const allowed = new Set([
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "PYTHONSAFEPATH",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PYTHONPATH",
        "RMP_IOX2_PREFIX",
        "RMP_IOX2_ROOT",
        "GIVEN_BY_CONFIG",
      ]);
      const extra = Object.keys(r.environ).filter((k) => !allowed.has(k));
      assertEquals(extra, [], `unexpected variables: ${extra}`);
      assertEquals(r.imports.rmp_cwd_probe_mod, false, JSON.stringify(r.path));
      assert(!r.path.includes(cwd), JSON.stringify(r.path));
    } finally {
      Deno.env.delete("RMP_TEST_SECRET_TOKEN");
      await Deno.remove(cwd, { recursive: true });
    }
  });
}

Deno.test("a session's root, lock file and shared memory are owner-only", async () => {
  await using ex = executor();
  const pipeline = new Pipeline().addNode("bad_echo", "n")
    .addInput("in", "n", "in").addOutput("out", "n", "out");
  await using session = await ex.createSession(pipeline, {
    modules: ["bad_nodes"],
    modulePaths: [`${root}reliability/nodes`],
    printLogs: false,
  });
  await session.initialize();
  const { prefix, root: isoRoot } = session.isolation;
  const files = [isoRoot, `${isoRoot.slice(0, -1)}.lock`];
  for (const e of Deno.readDirSync("/dev/shm")) {
    if (e.name.startsWith(prefix)) files.push(`/dev/shm/${e.name}`);
  }
  assert(files.length > 3, `only ${files}`);
  for (const f of files) {
    const mode = Deno.statSync(f).mode! & 0o777;
    assertEquals(mode & 0o077, 0, `${f} has mode ${mode.toString(8)}`);
  }
});

Deno.test("a module only in the working folder is not found by the type listing either", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "rmp_env_" });
  await Deno.writeTextFile(`${cwd}/rmp_cwd_only_mod.py`, "X = 1\n");
  const before = Deno.cwd();
  Deno.chdir(cwd);
  try {
    await using ex = executor({ typeCacheDir: false });
    const e = await assertRejects(
      () =>
        ex.createSession(single("bad_echo"), {
          modules: ["bad_nodes", "rmp_cwd_only_mod"],
          modulePaths: [`${root}reliability/nodes`],
          printLogs: false,
        }),
      NodeModuleError,
      'Cannot import node module "rmp_cwd_only_mod"',
    );
    assert(
      (e as NodeModuleError).failures.some((f) =>
        f.module === "rmp_cwd_only_mod" && f.notFound
      ),
    );
  } finally {
    Deno.chdir(before);
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("an edit that keeps a node module's size and mtime runs the new code (no stale bytecode cache)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rmp-pyc-" });
  try {
    const file = `${dir}/same_size_nodes.py`;
    const source = (reply: string) =>
      "from remotemedia_multiprocess.node import MultiprocessNode, register_node\n" +
      "from remotemedia_multiprocess.runtime_data import RuntimeData\n\n\n" +
      '@register_node("same_size")\nclass SameSize(MultiprocessNode):\n' +
      `    def process(self, data):\n        return RuntimeData.text("${reply}")\n`;
    const reply = async (): Promise<string> => {
      await using ex = executor({ typeCacheDir: false });
      await using session = await ex.createSession(single("same_size"), {
        modules: ["same_size_nodes"],
        modulePaths: [dir],
        printLogs: false,
      });
      await session.initialize();
      await session.send("in", text("?"));
      for await (const s of session.receive("out", { timeoutMs: 30_000 })) {
        return (s.data as TextData).text;
      }
      return "";
    };
    await Deno.writeTextFile(file, source("old"));
    const { mtime } = await Deno.stat(file);
    assertEquals(await reply(), "old");
    // Same size, and the mtime put back: what an edit within the same second
    // looks like to Python's .pyc check.
    await Deno.writeTextFile(file, source("new"));
    await Deno.utime(file, mtime!, mtime!);
    assertEquals(await reply(), "new");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
