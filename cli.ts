/**
 * The `remotemedia` command line: run, validate, list-types, inspect, tap
 * and new. Run it with `deno run -A <checkout>/cli.ts`, `deno task cli`, or
 * install it with
 * `deno install -A -g -n remotemedia --config <checkout>/deno.json <checkout>/cli.ts`.
 *
 * ```sh
 * remotemedia run pipeline.toml --input in=speech.wav --output out=reply.wav
 * remotemedia validate pipeline.toml
 * remotemedia list-types --module demo_nodes --path examples/nodes
 * remotemedia inspect            # the sessions running on this machine
 * remotemedia tap SESSION asr.out --hz
 * remotemedia new pipeline hello
 * ```
 *
 * Exit codes: 0 done, 1 a failure (the message names it and the fix), 2 a
 * usage error, 130 Ctrl-C (everything stopped and removed).
 *
 * @module
 */
import { MultiprocessError } from "./errors.ts";
import { CliError, usage } from "./cli/_errors.ts";
import { RUN_HELP, runCommand } from "./cli/run.ts";
import { VALIDATE_HELP, validateCommand } from "./cli/validate.ts";
import { LIST_TYPES_HELP, listTypesCommand } from "./cli/list_types.ts";
import { INSPECT_HELP, inspectCommand } from "./cli/inspect.ts";
import { TAP_HELP, tapCommand } from "./cli/tap.ts";
import { NEW_HELP, newCommand } from "./cli/new.ts";

/** The top-level help. */
export const HELP = `remotemedia: run real-time media pipelines of Python nodes

Usage: remotemedia <command> [options]   (remotemedia <command> --help)

  run <pipeline>        run a pipeline from a .toml/.json file, live progress
  validate <pipeline>   check a pipeline file; every error with its line
  list-types            the node types of some modules, ports and doc lines
  inspect [SESSION]     node states, queues, counts, RSS of a running session
  tap SESSION CHANNEL   print each message of a channel (read-only)
  new node|pipeline N   write a node module or a pipeline file that runs

Exit codes: 0 ok, 1 failure, 2 usage error, 130 interrupted (Ctrl-C).
`;

const COMMANDS: Record<
  string,
  { help: string; run: (args: string[]) => Promise<number> }
> = {
  run: { help: RUN_HELP, run: runCommand },
  validate: { help: VALIDATE_HELP, run: validateCommand },
  "list-types": { help: LIST_TYPES_HELP, run: listTypesCommand },
  inspect: { help: INSPECT_HELP, run: inspectCommand },
  tap: { help: TAP_HELP, run: tapCommand },
  new: { help: NEW_HELP, run: newCommand },
};

/** A hint per error class: what to do about it. */
const FIXES: Record<string, string> = {
  NodeModuleError:
    "fix the module, or give its folder with --module-path or module_paths",
  NodeInitError: "see the node's traceback above and fix its initialize()",
  ProcessCrashError: "see the node's last stderr lines above",
  ConfigError: "fix that key in the config file",
  ProcessSpawnError:
    "install Python or set python.executable in runtime.toml (`deno task setup` makes .venv)",
  MissingPermissionError: "run the CLI with -A",
  BackpressureTimeoutError:
    "a node is not keeping up: raise publish_timeout_secs or use --realtime",
};

/**
 * The one-sentence form of an error: its message, and the fix when the
 * message does not already say it.
 *
 * @param e The error.
 * @returns The text to print.
 *
 * @example
 * ```ts
 * import { describeError } from "./cli.ts";
 * console.log(describeError(new Error("boom"))); // "error: boom"
 * ```
 */
export function describeError(e: unknown): string {
  if (e instanceof CliError) return `error: ${e.message}`;
  if (e instanceof MultiprocessError) {
    const fix = FIXES[e.name];
    // A traceback was printed above with the node's log lines.
    const message = e.message.split("\nTraceback (most recent call last):")[0]
      .trimEnd();
    return `error: ${e.name}: ${message}${fix ? ` (${fix})` : ""}`;
  }
  if (e instanceof TypeError && /parseArgs|option|argument/i.test(e.message)) {
    return `error: ${e.message}; run with --help for the options`;
  }
  return `error: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Runs the CLI.
 *
 * @param args The arguments (without the program name).
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await main(["validate", "pipeline.toml"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (
      command === undefined || command === "help" || command === "--help" ||
      command === "-h"
    ) {
      const topic = command === "help" ? COMMANDS[rest[0]] : undefined;
      console.log(topic?.help ?? HELP);
      return command === undefined ? 2 : 0;
    }
    const entry = COMMANDS[command];
    if (!entry) {
      throw usage(
        `Unknown command "${command}"; the commands are ${
          Object.keys(COMMANDS).join(", ")
        } (run \`remotemedia help\`)`,
      );
    }
    return await entry.run(rest);
  } catch (e) {
    console.error(describeError(e));
    if (e instanceof CliError) return e.exitCode;
    const code = (e as { code?: string }).code;
    if (
      code?.startsWith("ERR_PARSE_ARGS") ||
      (e instanceof TypeError && /Unknown option|argument/.test(e.message))
    ) return 2;
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
