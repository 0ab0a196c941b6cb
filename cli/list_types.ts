/**
 * `remotemedia list-types [--module M] [--path P] [pipeline]`: the node
 * types some modules register, with their ports and the first line of their
 * docstring.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { readEnv } from "../control/config.ts";
import { CliError, usage } from "./_errors.ts";
import { loadCliConfig, loadPipelineFile, mergeModules } from "./_sources.ts";

/** The help text of `list-types`. */
export const LIST_TYPES_HELP = `remotemedia list-types [options] [pipeline]

The node types the given modules register: ports and doc lines.

  --module M          a Python module to import (repeatable)
  --path DIR          a folder to import modules from (repeatable)
  --config FILE       runtime.toml (Python executable; its [cli] modules)
  --json              one JSON object
  pipeline            also take the modules a pipeline file names
`;

/** One node type. */
export interface NodeTypeDoc {
  /** The type name. */
  type: string;
  /** Input ports. */
  inputs: string[];
  /** Output ports. */
  outputs: string[];
  /** The first line of the class docstring. */
  doc: string;
  /** The Python class, `module.Class`. */
  cls: string;
}

const PYTHON_DIR = new URL("../python/", import.meta.url).pathname;

/** Lists the types and their docstrings, using the runner's own import. */
const SCRIPT = `
import json, sys
from remotemedia_multiprocess.runner import list_types
from remotemedia_multiprocess.node import registered_types
args = json.loads(sys.argv[1])
listing = list_types(args["paths"], args["modules"])
for name, cls in registered_types().items():
    if name in listing["types"]:
        doc = " ".join((cls.__doc__ or "").strip().split("\\n\\n")[0].split())
        listing["types"][name]["doc"] = doc
        listing["types"][name]["cls"] = f"{cls.__module__}.{cls.__qualname__}"
print(json.dumps(listing))
`;

/**
 * Runs `remotemedia list-types`.
 *
 * @param args The arguments after `list-types`.
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await listTypesCommand(["--module", "demo_nodes", "--path", "examples/nodes"]));
 * ```
 */
export async function listTypesCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      module: { type: "string", multiple: true },
      path: { type: "string", multiple: true },
      config: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(LIST_TYPES_HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw usage("Give at most one pipeline file to take modules from");
  }
  const cli = await loadCliConfig(values.config);
  const file = positionals.length
    ? await loadPipelineFile(positionals[0])
    : { modules: [], modulePaths: [] };
  const { modules, modulePaths } = mergeModules([
    { modules: values.module ?? [], modulePaths: values.path ?? [] },
    file,
    cli,
  ]);
  if (!modules.length) {
    throw usage(
      "No modules to list: give --module M (and --path DIR for its folder), or a pipeline file with modules = [...]",
    );
  }
  const { executable, env, extraPaths } = cli.config.python;
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(executable, {
      args: ["-c", SCRIPT, JSON.stringify({ paths: modulePaths, modules })],
      env: {
        ...env,
        PYTHONPATH: [
          PYTHON_DIR,
          ...modulePaths,
          ...extraPaths,
          readEnv("PYTHONPATH") ?? "",
        ].filter(Boolean).join(":"),
      },
      stdin: "null",
      signal: AbortSignal.timeout(30_000),
    }).output();
  } catch (e) {
    throw new CliError(
      `Cannot run Python "${executable}": ${
        (e as Error).message
      }; set python.executable in runtime.toml (--config) or run \`deno task setup\``,
    );
  }
  const stdout = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    const err = new TextDecoder().decode(output.stderr).trim().split("\n")
      .at(-1);
    throw new CliError(
      `Python "${executable}" could not list the node types (${err}); check that remotemedia-multiprocess is installed for it`,
    );
  }
  const listing = JSON.parse(stdout.split("\n").at(-1)!) as {
    types: Record<string, Omit<NodeTypeDoc, "type">>;
    errors: { module: string; error: string; location?: string }[];
    missing_paths: string[];
  };
  const types: NodeTypeDoc[] = Object.entries(listing.types).map((
    [type, t],
  ) => ({
    type,
    inputs: t.inputs,
    outputs: t.outputs,
    doc: t.doc ?? "",
    cls: t.cls ?? "",
  }));
  if (values.json) {
    console.log(JSON.stringify({ types, errors: listing.errors }));
  } else {
    const width = Math.max(4, ...types.map((t) => t.type.length));
    for (const t of types) {
      console.log(
        `${t.type.padEnd(width)}  in: ${t.inputs.join(", ") || "-"}  out: ${
          t.outputs.join(", ") || "-"
        }${t.doc ? `  ${t.doc}` : ""}`,
      );
    }
    if (!types.length) console.log("(no node types registered)");
  }
  for (const e of listing.errors) {
    console.error(
      `error: Cannot import node module "${e.module}": ${e.error}${
        e.location ? ` (at ${e.location})` : ""
      }; fix the module or give its folder with --path`,
    );
  }
  for (const p of listing.missing_paths ?? []) {
    console.error(
      `warning: the module folder ${p} does not exist; check --path`,
    );
  }
  return listing.errors.length ? 1 : 0;
}
