/**
 * `deno task setup`: builds everything the module needs, idempotently.
 * - the native library (cargo build --release of ffi/),
 * - the Python venv at .venv with the node SDK installed (editable),
 * - with `--examples` (or `--examples=<name>[,<name>...]`): one venv per example
 *   environment, `.venvs/<name>/`, from `examples/envs/<name>.txt` (a pip
 *   requirements file, exact pins), plus `examples/envs/<name>.nodeps.txt`
 *   installed with `--no-deps` when present, plus the SDK from `python/`
 *   (editable, which pins iceoryx2 to the crate's version).
 * Quick when nothing changed (a digest stamp per venv), so tests, benches and
 * examples run it first.
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

/**
 * Builds the native library and the venv unless they are up to date.
 *
 * @example
 * ```ts ignore
 * import { setup } from "./setup.ts";
 * await setup();
 * ```
 */
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

/** Options of {@linkcode setupExamples}. */
export interface SetupExamplesOptions {
  /**
   * Names of the example environments to build (`examples/envs/<name>.txt`).
   * @default {undefined} every environment under examples/envs/
   */
  names?: string[];
}

/**
 * The example environments described under examples/envs/, sorted by name.
 *
 * @returns The names (`examples/envs/<name>.txt`).
 *
 * @example
 * ```ts ignore
 * import { exampleEnvNames } from "./setup.ts";
 * console.log(await exampleEnvNames()); // ["mediapipe", "speech"]
 * ```
 */
export async function exampleEnvNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${root}examples/envs`)) {
    if (
      entry.isFile && entry.name.endsWith(".txt") &&
      !entry.name.endsWith(".nodeps.txt")
    ) {
      names.push(entry.name.slice(0, -".txt".length));
    }
  }
  return names.sort();
}

/**
 * The Python executable of the example environment `name`.
 *
 * @param name The environment.
 * @returns `<root>/.venvs/<name>/bin/python`.
 *
 * @example
 * ```ts ignore
 * import { exampleEnvPython } from "./setup.ts";
 * console.log(exampleEnvPython("mediapipe"));
 * ```
 */
export function exampleEnvPython(name: string): string {
  return `${root}.venvs/${name}/bin/python`;
}

/**
 * Builds `.venvs/<name>/` for each example environment unless its stamp says it
 * is up to date with its requirement files and the SDK's pyproject.toml.
 *
 * @param options Which environments.
 * @returns The names built or found up to date.
 * @throws {Error} naming an environment that has no requirements file.
 *
 * @example
 * ```ts ignore
 * import { setupExamples } from "./setup.ts";
 * await setupExamples({ names: ["mediapipe"] });
 * ```
 */
export async function setupExamples(
  options: SetupExamplesOptions = {},
): Promise<string[]> {
  const all = await exampleEnvNames();
  const names = options.names ?? all;
  for (const name of names) {
    if (!all.includes(name)) {
      throw new Error(
        `setup: no example environment "${name}" (examples/envs/${name}.txt does not exist; known: ${
          all.join(", ") || "none"
        })`,
      );
    }
  }
  for (const name of names) {
    const venvDir = `${root}.venvs/${name}`;
    const py = `${venvDir}/bin/python`;
    const req = `examples/envs/${name}.txt`;
    const nodeps = `examples/envs/${name}.nodeps.txt`;
    const hasNodeps = await exists(`${root}${nodeps}`);
    const inputs = [
      req,
      ...(hasNodeps ? [nodeps] : []),
      "python/pyproject.toml",
    ];
    const want = await digest(inputs);
    const stampPath = `${venvDir}/.rmp-setup-stamp`;
    const have = await Deno.readTextFile(stampPath).catch(() => "");
    if (have === want && await exists(py)) continue;
    console.log(`setup: building example environment .venvs/${name}`);
    if (!await exists(py)) {
      await run("python3", ["-m", "venv", venvDir], `creating .venvs/${name}`);
    }
    const pip = [
      py,
      "-m",
      "pip",
      "install",
      "--quiet",
      "--disable-pip-version-check",
    ];
    await run(pip[0], [...pip.slice(1), "-r", req], `installing ${req}`);
    if (hasNodeps) {
      await run(
        pip[0],
        // Their declared dependencies are left out on purpose: no warning.
        [...pip.slice(1), "--no-deps", "--no-warn-conflicts", "-r", nodeps],
        `installing ${nodeps} (--no-deps)`,
      );
    }
    await run(
      pip[0],
      [...pip.slice(1), "--no-warn-conflicts", "-e", "python"],
      `installing the SDK into .venvs/${name}`,
    );
    await Deno.writeTextFile(stampPath, want);
  }
  return names;
}

/**
 * The value of `--examples` / `--examples=a,b` in `args`.
 *
 * @param args Command-line arguments.
 * @returns null when absent, undefined for every environment, else the names.
 *
 * @example
 * ```ts ignore
 * import { examplesArg } from "./setup.ts";
 * console.log(examplesArg(["--examples=speech"])); // ["speech"]
 * ```
 */
export function examplesArg(args: string[]): string[] | undefined | null {
  for (const arg of args) {
    if (arg === "--examples") return undefined;
    if (arg.startsWith("--examples=")) {
      return arg.slice("--examples=".length).split(",").filter((n) => n);
    }
  }
  return null;
}

if (import.meta.main) {
  await setup();
  console.log("setup: native library and Python venv are ready");
  const wanted = examplesArg(Deno.args);
  if (wanted !== null) {
    const built = await setupExamples({ names: wanted });
    console.log(
      `setup: example environments ready: ${built.join(", ") || "none"}`,
    );
  }
}
