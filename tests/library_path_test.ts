/**
 * Where the native library comes from, step by step (data/_library_path.ts):
 * `RMP_ICEORYX2_LIB`, the `remotemedia-multiprocess` package of the
 * configured Python (asked once), a checkout's build; and what each failure
 * tells the user to do. Each case runs a copy of the published file set in
 * its own Deno process (a checkout only where the case makes one), with a
 * real interpreter and the real library.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { stageDenoModule } from "../scripts/_publish_files.ts";

const root = new URL("..", import.meta.url).pathname;
const built = `${root}ffi/target/release/librmp_iceoryx2.so`;

const PROBE = `
import { libraryPath, nativeLibrary } from "./data/native.ts";
import { lookupLibrary } from "./data/_library_path.ts";
import { MultiprocessExecutor } from "./mod.ts";
const [mode, python] = Deno.args;
try {
  if (mode === "library") {
    const first = lookupLibrary({ python });
    const again = lookupLibrary({ python });
    nativeLibrary({ python });
    console.log(JSON.stringify({ ok: true, path: libraryPath(), steps: first, again }));
  } else if (mode === "venv") {
    await new MultiprocessExecutor({ python: { venvPath: python } }).listNodeTypes();
    console.log(JSON.stringify({ ok: true }));
  } else {
    await new MultiprocessExecutor({ python: { executable: python } }).listNodeTypes();
    console.log(JSON.stringify({ ok: true }));
  }
} catch (e) {
  console.log(JSON.stringify({ ok: false, name: e.name, message: e.message }));
}
`;

interface Outcome {
  ok: boolean;
  name?: string;
  message?: string;
  path?: string;
  steps?: Array<{ step: string; path?: string; reason?: string }>;
  again?: unknown;
}

const tmp = await Deno.makeTempDir({ prefix: "library-path-" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(tmp, { recursive: true });
});
/** A copy of the published module: not a checkout. */
const copy = `${tmp}/copy`;
await stageDenoModule(copy);
await Deno.writeTextFile(`${copy}/probe.ts`, PROBE);
/** The same copy made into a checkout (its marker files), without a build. */
const checkout = `${tmp}/checkout`;
await stageDenoModule(checkout);
await Deno.writeTextFile(`${checkout}/probe.ts`, PROBE);
await Deno.mkdir(`${checkout}/ffi/target/release`, { recursive: true });
await Deno.mkdir(`${checkout}/python`);
await Deno.copyFile(`${root}ffi/Cargo.toml`, `${checkout}/ffi/Cargo.toml`);
await Deno.copyFile(
  `${root}python/pyproject.toml`,
  `${checkout}/python/pyproject.toml`,
);
/** An interpreter without the package (a bare venv). */
const bare = `${tmp}/bare`;
{
  const made = await new Deno.Command("python3", {
    args: ["-m", "venv", "--without-pip", bare],
  }).output();
  assert(made.success, new TextDecoder().decode(made.stderr));
}
const barePython = `${bare}/bin/python`;
/** A package with a library, as a wheel installs it (real files). */
const site = `${tmp}/site`;
await Deno.mkdir(`${site}/remotemedia_multiprocess/_native`, {
  recursive: true,
});
await Deno.copyFile(
  `${root}python/remotemedia_multiprocess/_native_lib.py`,
  `${site}/remotemedia_multiprocess/_native_lib.py`,
);
await Deno.writeTextFile(`${site}/remotemedia_multiprocess/__init__.py`, "");
const carried = `${site}/remotemedia_multiprocess/_native/librmp_iceoryx2.so`;
await Deno.copyFile(built, carried);
/** An interpreter that counts how often it is asked. */
const counting = `${tmp}/counting-python`;
await Deno.writeTextFile(
  counting,
  `#!/bin/sh\necho asked >> ${tmp}/asked\nexec ${barePython} "$@"\n`,
);
await Deno.chmod(counting, 0o755);

async function probe(
  dir: string,
  mode: "library" | "list" | "venv",
  python: string,
  env: Record<string, string> = {},
): Promise<Outcome> {
  const base = { ...Deno.env.toObject() };
  delete base.RMP_ICEORYX2_LIB;
  delete base.PYTHONPATH;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", `${dir}/probe.ts`, mode, python],
    cwd: tmp,
    env: { ...base, ...env },
    clearEnv: true,
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const last = stdout.split("\n").at(-1) ?? "";
  assert(
    last.startsWith("{"),
    `no result: ${stdout} ${new TextDecoder().decode(out.stderr)}`,
  );
  return JSON.parse(last);
}

function failed(o: Outcome, ...parts: string[]): void {
  assertEquals(o.ok, false, JSON.stringify(o));
  assertEquals(o.name, "NativeLibraryError", JSON.stringify(o));
  for (const p of parts) assert(o.message!.includes(p), `${p} in ${o.message}`);
}

Deno.test("1. RMP_ICEORYX2_LIB wins, and the Python is not asked", async () => {
  await Deno.remove(`${tmp}/asked`).catch(() => {});
  const o = await probe(copy, "library", counting, { RMP_ICEORYX2_LIB: built });
  assertEquals(o.ok, true, JSON.stringify(o));
  assertEquals(o.path, built);
  assertEquals(o.steps, [{ step: "env", path: built }]);
  assert(!(await Deno.stat(`${tmp}/asked`).catch(() => null)), "asked");
});

Deno.test("1. a RMP_ICEORYX2_LIB that does not exist is an error that says to fix or unset it", async () => {
  const o = await probe(copy, "library", barePython, {
    RMP_ICEORYX2_LIB: `${tmp}/none.so`,
  });
  failed(
    o,
    `${tmp}/none.so does not exist`,
    "set RMP_ICEORYX2_LIB to a library built from this version, or unset it",
  );
});

Deno.test("2. the package of the configured Python carries it: used, asked once", async () => {
  await Deno.remove(`${tmp}/asked`).catch(() => {});
  const o = await probe(copy, "library", counting, { PYTHONPATH: site });
  assertEquals(o.ok, true, JSON.stringify(o));
  assertEquals(o.path, carried);
  assertEquals(o.steps!.map((s) => s.step), ["env", "python"]);
  assertEquals(o.again, o.steps);
  assertEquals((await Deno.readTextFile(`${tmp}/asked`)).trim(), "asked");
});

Deno.test("2. the package wins over a checkout's build", async () => {
  await Deno.copyFile(
    built,
    `${checkout}/ffi/target/release/librmp_iceoryx2.so`,
  );
  try {
    const o = await probe(checkout, "library", barePython, {
      PYTHONPATH: site,
    });
    assertEquals(o.path, carried, JSON.stringify(o));
  } finally {
    await Deno.remove(`${checkout}/ffi/target/release/librmp_iceoryx2.so`);
  }
});

Deno.test("2. a Python without the package: every step says what it found, and what to do", async () => {
  const o = await probe(copy, "library", barePython);
  failed(
    o,
    "No native iceoryx2 library (librmp_iceoryx2) was found",
    "(1) RMP_ICEORYX2_LIB is not set",
    `(2) the Python ${barePython} has no remotemedia-multiprocess package: install it with \`${barePython} -m pip install remotemedia-multiprocess\``,
    "(3) this copy of the module is not a development checkout",
    "Install remotemedia-multiprocess into the configured Python, or set RMP_ICEORYX2_LIB",
  );
  assert(
    !o.message!.includes("deno task"),
    "no checkout task outside a checkout",
  );
});

Deno.test("2. a package without a library (a source install) says to install the wheel", async () => {
  const o = await probe(copy, "library", barePython, {
    PYTHONPATH: `${root}python`,
  });
  failed(
    o,
    "carries no native library (an editable or source install)",
    `\`${barePython} -m pip install --force-reinstall remotemedia-multiprocess\``,
  );
});

Deno.test("2. a configured Python that does not exist is named", async () => {
  const o = await probe(copy, "library", `${tmp}/no/python`);
  failed(o, `${tmp}/no/python cannot run (not found)`, "python.executable");
});

Deno.test("3. a checkout's build is the last step; missing, it says `deno task setup`", async () => {
  const missing = await probe(checkout, "library", barePython);
  failed(
    missing,
    `(3) the checkout's build ${checkout}/ffi/target/release/librmp_iceoryx2.so does not exist: build it with \`deno task setup\``,
  );
  await Deno.copyFile(
    built,
    `${checkout}/ffi/target/release/librmp_iceoryx2.so`,
  );
  try {
    const o = await probe(checkout, "library", barePython);
    assertEquals(o.ok, true, JSON.stringify(o));
    assertEquals(o.path, `${checkout}/ffi/target/release/librmp_iceoryx2.so`);
    assertEquals(o.steps!.map((s) => s.step), ["env", "python", "checkout"]);
  } finally {
    await Deno.remove(`${checkout}/ffi/target/release/librmp_iceoryx2.so`);
  }
});

Deno.test("outside a checkout, a Python without the SDK cannot list node types: the error says to pip install it", async () => {
  const o = await probe(copy, "list", barePython);
  assertEquals(o.name, "ProcessSpawnError", JSON.stringify(o));
  assert(
    o.message!.includes(
      `has no remotemedia-multiprocess package, so it cannot run nodes: install it with \`${barePython} -m pip install remotemedia-multiprocess\``,
    ),
    o.message,
  );
});

Deno.test("a venv_path that does not exist says how to make one", async () => {
  const o = await probe(copy, "venv", `${tmp}/no-venv`);
  assert(
    o.message!.includes(
      `create it with \`python3 -m venv ${tmp}/no-venv\` and \`${tmp}/no-venv/bin/pip install remotemedia-multiprocess\``,
    ),
    JSON.stringify(o),
  );
});
