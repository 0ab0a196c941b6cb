/**
 * The speech example's Python environment, `.venvs/speech/`, built from
 * `examples/envs/speech.txt` (+ `speech.nodeps.txt`) by `deno task setup
 * --examples=speech` (scripts/setup.ts), which {@linkcode ensureSpeechEnv}
 * runs on first use.
 *
 * @module
 */
import { SpeechLoopError } from "./errors.ts";
import { setupExamples } from "../../scripts/setup.ts";

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
  if (options.build === false) {
    try {
      await Deno.stat(SPEECH_PYTHON);
      return SPEECH_PYTHON;
    } catch {
      throw new SpeechLoopError(
        `The speech environment ${ROOT}.venvs/speech is missing: run \`deno task setup --examples=speech\` (or \`deno task demo\`, which builds it)`,
        { stage: "environment" },
      );
    }
  }
  // The one builder of example environments (idempotent, digest-stamped).
  try {
    await setupExamples({ names: ["speech"] });
  } catch (cause) {
    throw new SpeechLoopError(
      `Building ${ROOT}.venvs/speech failed: ${(cause as Error).message}`,
      { stage: "environment", cause },
    );
  }
  log(`${ROOT}.venvs/speech is ready`);
  return SPEECH_PYTHON;
}
