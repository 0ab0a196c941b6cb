/**
 * `deno task setup`: builds everything the module needs, idempotently.
 * - the native library (cargo build --release of ffi/),
 * - the Python venv at .venv with the node SDK installed (editable).
 * Quick when nothing changed, so tests, benches and examples run it first.
 *
 * @module
 */

const root = new URL("../", import.meta.url).pathname;
const venv = `${root}.venv`;
const python = `${venv}/bin/python`;

async function run(cmd: string, args: string[], what: string): Promise<void> {
  const { code } = await new Deno.Command(cmd, {
    args,
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output().catch((cause) => {
    throw new Error(`setup: cannot run ${cmd} (${what})`, { cause });
  });
  if (code !== 0) throw new Error(`setup: ${what} failed (exit ${code})`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function digest(paths: string[]): Promise<string> {
  const parts = await Promise.all(
    paths.map((p) => Deno.readFile(`${root}${p}`)),
  );
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Builds the native library and the venv unless they are up to date. */
export async function setup(): Promise<void> {
  // cargo decides by itself whether anything changed.
  await run(
    "cargo",
    ["build", "--release", "--quiet", "--manifest-path", "ffi/Cargo.toml"],
    "building the native library (cargo build --release)",
  );
  if (!await exists(python)) {
    await run("python3", ["-m", "venv", venv], "creating the Python venv");
  }
  const stampPath = `${venv}/.rmp-setup-stamp`;
  const want = await digest(["python/pyproject.toml"]);
  const have = await Deno.readTextFile(stampPath).catch(() => "");
  if (have !== want) {
    await run(
      python,
      ["-m", "pip", "install", "--quiet", "-e", "python[dev]"],
      "installing the Python package into .venv",
    );
    await Deno.writeTextFile(stampPath, want);
  }
}

if (import.meta.main) {
  await setup();
  console.log("setup: native library and Python venv are ready");
}
