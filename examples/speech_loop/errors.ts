/**
 * The speech example's error: a {@linkcode MultiprocessError} that names the
 * stage that failed.
 *
 * @module
 */
import { MultiprocessError } from "../../errors.ts";

/** Which part of the speech loop failed. */
export type SpeechLoopStage =
  | "environment"
  | "synthesis"
  | "stream"
  | "result";

/**
 * A failure of the speech example (its environment, the synthesis of test
 * audio, a bounded wait of the loop).
 *
 * @example
 * ```ts
 * import { SpeechLoopError } from "./errors.ts";
 * const e = new SpeechLoopError("Synthesis failed: espeak-ng missing", { stage: "synthesis" });
 * console.log(e.stage); // "synthesis"
 * ```
 */
export class SpeechLoopError extends MultiprocessError {
  /** The stage that failed. */
  readonly stage: SpeechLoopStage;

  /**
   * Creates the error.
   *
   * @param message What failed and why.
   * @param options The stage, and the cause if any.
   */
  constructor(
    message: string,
    options: { stage: SpeechLoopStage; cause?: unknown; nodeId?: string },
  ) {
    super(message, options);
    this.stage = options.stage;
  }
}
