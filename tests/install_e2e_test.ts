/**
 * What a user does, with no clone of this repository on any path: the JSR
 * file set (`deno publish --dry-run`) served over loopback HTTP, the wheel
 * built (`deno task build:wheel`'s builder: sdist, wheel, auditwheel, twine)
 * and installed into a fresh venv in a temporary folder, then, from an empty
 * folder with `RMP_ICEORYX2_LIB` and `PYTHONPATH` unset, a pipeline of the
 * user's own node module run from TypeScript (importing the module by its
 * http URL) and through the Python client of that venv.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { publishFileSet } from "../scripts/_publish_files.ts";
import { buildDist } from "../scripts/build_wheel.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const BASE = "/@remotemedia/multiprocess/0.1.0/";

const NODES = `
import remotemedia_multiprocess as rmp
from remotemedia_multiprocess import MultiprocessNode, RuntimeData, register_node


@register_node("shout")
class Shout(MultiprocessNode):
    def process(self, data: RuntimeData) -> RuntimeData:
        # Where the SDK was imported from travels back with the reply.
        return RuntimeData.text(data.as_text().upper() + "!|" + rmp.__file__)
`;

const MAIN_TS = (url: string, python: string) => `
import {
  MultiprocessExecutor,
  Pipeline,
  text,
} from "${url}mod.ts";
import { libraryPath } from "${url}data/native.ts";

const pipeline = new Pipeline()
  .addNode("shout", "s")
  .addInput("in", "s", "in")
  .addOutput("out", "s", "out");
await using executor = new MultiprocessExecutor({ python: { executable: ${
  JSON.stringify(python)
} } });
await using session = await executor.createSession(pipeline, {
  modules: ["my_nodes"],
  modulePaths: ["."],
});
await session.initialize();
await session.send("in", text("hello"));
for await (const sample of session.receive("out", { timeoutMs: 20000 })) {
  const data = sample.data;
  console.log(JSON.stringify({
    reply: data.kind === "text" ? data.text : "not text: " + data.kind,
    library: libraryPath(),
  }));
  break;
}
`;

const MAIN_PY = `
import json

import remotemedia_multiprocess as rmp
from remotemedia_multiprocess import Pipeline, RuntimeData
from remotemedia_multiprocess.client import Session

p = Pipeline().add_node("shout", "s").add_input("in", "s", "in").add_output("out", "s", "out")
with Session(p, modules=["my_nodes"], module_paths=["."]) as s:
    s.initialize(timeout=60)
    s.send("in", RuntimeData.text("hello"))
    reply = s.receive("out", timeout=20)
    assert reply is not None, "no reply in 20 s"
    print(json.dumps({"reply": reply.as_text(), "sdk": rmp.__file__}))
`;

const CONTENT_TYPES: Record<string, string> = {
  ts: "application/typescript",
  js: "application/javascript",
  json: "application/json",
};

interface Ran {
  code: number;
  out: string;
  last: Record<string, string>;
}

/** Runs a command bounded in time, in `cwd`, with exactly `env`. */
async function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<Ran> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    signal: AbortSignal.timeout(180_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1);
  let last: Record<string, string> = {};
  try {
    last = JSON.parse(line ?? "");
  } catch { /* reported below */ }
  return { code: out.code, out: text, last };
}

function noCheckout(value: string, what: string): void {
  assert(!value.includes(root), `${what} is inside the checkout: ${value}`);
}

Deno.test({
  name:
    "from JSR-style http import and a pip-installed wheel, with no checkout on any path, a user's pipeline runs (TypeScript and Python)",
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "install-e2e-" });
    const files = new Set(await publishFileSet());
    assert(
      ![...files].some((f) =>
        /(^|\/)tests?\//.test(f) || f.endsWith("_test.ts")
      ),
      [...files].join(" "),
    );
    assert(
      ![...files].some((f) => /^(bench|ffi|python|scripts|examples)\//.test(f)),
      [...files].join(" "),
    );
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        const path = decodeURIComponent(new URL(req.url).pathname);
        const file = path.startsWith(BASE) ? path.slice(BASE.length) : "";
        if (!files.has(file)) return new Response("not found", { status: 404 });
        const ext = file.split(".").at(-1) ?? "";
        return new Response(await Deno.readFile(`${root}/${file}`), {
          headers: { "content-type": CONTENT_TYPES[ext] ?? "text/plain" },
        });
      },
    );
    try {
      const port = server.addr.port;
      const url = `http://127.0.0.1:${port}${BASE}`;
      const { wheel } = await buildDist({
        outDir: `${tmp}/dist`,
        verbose: false,
      });
      assert(/py3-none-manylinux_\d+_\d+_x86_64\.whl$/.test(wheel), wheel);

      const venv = `${tmp}/venv`;
      const python = `${venv}/bin/python`;
      const home = Deno.env.get("HOME") ?? tmp;
      // The user's PATH: the system's, without this checkout's .venv.
      const path = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")
        .filter((p) => !p.startsWith(root)).join(":");
      const denoDir = `${tmp}/deno_dir`;
      // The npm dependency the module imports, as `deno add` would have
      // cached it (no registry access needed by the test).
      const info = JSON.parse(new TextDecoder().decode(
        (await new Deno.Command(Deno.execPath(), {
          args: ["info", "--json"],
          stdout: "piped",
        }).output()).stdout,
      ));
      await Deno.mkdir(`${denoDir}/npm/registry.npmjs.org`, {
        recursive: true,
      });
      await new Deno.Command("cp", {
        args: [
          "-r",
          `${info.npmCache}/registry.npmjs.org/smol-toml`,
          `${denoDir}/npm/registry.npmjs.org/`,
        ],
      }).output();
      const env = {
        PATH: `${Deno.execPath().replace(/\/[^/]+$/, "")}:${path}`,
        HOME: home,
        DENO_DIR: denoDir,
        NO_COLOR: "1",
      };
      const made = await run("python3", ["-m", "venv", venv], tmp, env);
      assertEquals(made.code, 0, made.out);
      const pip = await run(
        python,
        [
          "-m",
          "pip",
          "install",
          "--quiet",
          "--disable-pip-version-check",
          wheel,
        ],
        tmp,
        env,
      );
      assertEquals(pip.code, 0, pip.out);
      const where = await run(
        python,
        ["-m", "remotemedia_multiprocess", "--native-lib"],
        tmp,
        env,
      );
      assertEquals(where.code, 0, where.out);
      const library = where.out.trim();
      assert(
        library.startsWith(`${venv}/lib/`) &&
          library.endsWith("/librmp_iceoryx2.so"),
        library,
      );

      const user = `${tmp}/user`;
      await Deno.mkdir(user);
      await Deno.writeTextFile(`${user}/my_nodes.py`, NODES);
      await Deno.writeTextFile(`${user}/main.ts`, MAIN_TS(url, python));
      await Deno.writeTextFile(`${user}/main.py`, MAIN_PY);

      const ts = await run(
        Deno.execPath(),
        [
          "run",
          "-A",
          "--no-lock",
          "main.ts",
        ],
        user,
        env,
      );
      assertEquals(ts.code, 0, ts.out);
      assert(typeof ts.last.reply === "string", ts.out);
      const [shouted, sdk] = ts.last.reply.split("|");
      assertEquals(shouted, "HELLO!", ts.out);
      assert(
        sdk.startsWith(`${venv}/lib/`),
        `the runner imported the SDK from ${sdk}`,
      );
      assertEquals(ts.last.library, library, ts.out);

      const py = await run(python, ["main.py"], user, env);
      assertEquals(py.code, 0, py.out);
      assert(typeof py.last.reply === "string", py.out);
      const [pyShouted, pySdk] = py.last.reply.split("|");
      assertEquals(pyShouted, "HELLO!", py.out);
      assert(pySdk.startsWith(`${venv}/lib/`), pySdk);
      assert(py.last.sdk.startsWith(`${venv}/lib/`), py.last.sdk);
      for (const v of [sdk, pySdk, py.last.sdk, library]) {
        noCheckout(v, "a path used");
      }
    } finally {
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
