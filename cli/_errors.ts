/**
 * The CLI's own error: a bad command line or input file, said in one
 * sentence that names the problem and the fix.
 *
 * @module
 */
import { MultiprocessError, type MultiprocessErrorOptions } from "../errors.ts";

/** Options of {@linkcode CliError}. */
export interface CliErrorOptions extends MultiprocessErrorOptions {
  /**
   * The process exit code.
   * @default {1}
   */
  exitCode?: number;
}

/**
 * A command-line error: bad arguments (exit 2) or a bad input (exit 1).
 *
 * @example
 * ```ts
 * import { CliError } from "./_errors.ts";
 * const e = new CliError("Unknown command \"rn\"; run `remotemedia help`", { exitCode: 2 });
 * console.log(e.exitCode); // 2
 * ```
 */
export class CliError extends MultiprocessError {
  /** The exit code the CLI ends with. */
  readonly exitCode: number;

  /**
   * Creates the error.
   *
   * @param message One sentence: what failed and how to fix it.
   * @param options Exit code, node and cause.
   */
  constructor(message: string, options: CliErrorOptions = {}) {
    super(message, options);
    this.exitCode = options.exitCode ?? 1;
  }
}

/**
 * A usage error (exit 2).
 *
 * @param message What is wrong and how to fix it.
 * @returns The error.
 *
 * @example
 * ```ts
 * import { usage } from "./_errors.ts";
 * console.log(usage("Missing the pipeline file").exitCode); // 2
 * ```
 */
export function usage(message: string): CliError {
  return new CliError(message, { exitCode: 2 });
}
