/**
 * The speech example's Python environment, `.venvs/speech/`, built from
 * `examples/envs/speech.txt` (+ `speech.nodeps.txt`) following the examples'
 * environment convention. This is the one place that builds it; once
 * `deno task setup --examples=speech` exists, {@linkcode ensureSpeechEnv} can
 * call that instead.
 *
 * @module
 */
import { SpeechLoopError } from "./errors.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Options for {@linkcode ensureSpeechEnv}. */
export interface EnsureSpeechEnvOptions {
  /**
   * Where progress lines go.
   *
   * @default {console.log}
   */
  log?: (line: string) => void;
  /**
   * Build it when it is missing or stale (otherwise fail).
   *
   * @default {true}
   */
  build?: boolean;
}

/**
 * The environment's interpreter (it may not exist yet).
 *
 * @example
 * ```ts
 * import { SPEECH_PYTHON } from "./env.ts";
 * console.log(SPEECH_PYTHON.endsWith(".venvs/speech/bin/python")); // true
 * ```
 */
export const SPEECH_PYTHON: string = `${ROOT}.venvs/speech/bin/python`;

async function digest(): Promise<string> {
  const parts: string[] = [];
  for (const f of ["speech.txt", "speech.nodeps.txt"]) {
    try {
      parts.push(await Deno.readTextFile(`${ROOT}examples/envs/${f}`));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      parts.push("");
    }
  }
  parts.push(await Deno.readTextFile(`${ROOT}python/pyproject.toml`));
  const bytes = new TextEncoder().encode(parts.join("\0"));
  const hash = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(
    new Uint8Array(hash),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
  }).output();
  if (!out.success) {
    const tail = new TextDecoder().decode(out.stderr).split("\n").slice(-15)
      .join("\n");
    throw new SpeechLoopError(
      `Building .venvs/speech failed: ${cmd} ${
        args.join(" ")
      } exited with ${out.code}\n${tail}`,
      { stage: "environment" },
    );
  }
}

/**
 * Makes sure `.venvs/speech` exists and matches its requirement files
 * (a digest stamp, like the main `.venv`), building it when needed.
 *
 * @param options Logging, and whether to build.
 * @returns The interpreter path.
 * @throws {SpeechLoopError} When it is missing and `build` is false, or a
 * step of the build fails.
 *
 * @example
 * ```ts ignore
 * const python = await ensureSpeechEnv();
 * ```
 */
export async function ensureSpeechEnv(
  options: EnsureSpeechEnvOptions = {},
): Promise<string> {
  const log = options.log ?? console.log;
  const venv = `${ROOT}.venvs/speech`;
  const stamp = `${venv}/.rmp-digest`;
  const want = await digest();
  let have = "";
  try {
    have = (await Deno.readTextFile(stamp)).trim();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (have === want) return SPEECH_PYTHON;
  if (options.build === false) {
    throw new SpeechLoopError(
      `The speech environment ${venv} is missing or stale: run \`deno task demo\` once (it builds it) or \`deno task setup --examples=speech\``,
      { stage: "environment" },
    );
  }
  log(
    `building ${venv} from examples/envs/speech.txt (first use; a few minutes)`,
  );
  await run("python3", ["-m", "venv", venv]);
  const pip = `${venv}/bin/pip`;
  await run(pip, ["install", "-q", "--upgrade", "pip"]);
  await run(pip, ["install", "-q", "-r", "examples/envs/speech.txt"]);
  await run(pip, [
    "install",
    "-q",
    "--no-deps",
    "-r",
    "examples/envs/speech.nodeps.txt",
  ]);
  await run(pip, ["install", "-q", "-e", "python/"]);
  await Deno.writeTextFile(stamp, want + "\n");
  log(`${venv} is ready`);
  return SPEECH_PYTHON;
}
