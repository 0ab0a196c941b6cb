/**
 * `remotemedia validate <pipeline>`: checks a pipeline file (syntax, schema,
 * node types and ports against the modules it names, graph rules) and
 * prints every error found with its line in the file; exit 1 when any.
 *
 * Per-node checks (unknown type, unknown port) report every node; the graph
 * rules (ids, names, cycles, reachability) stop at their first broken rule,
 * as the library's `validate()` does.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { MultiprocessExecutor } from "../control/executor.ts";
import { PipelineValidationError } from "../errors.ts";
import { definitionFromJson, definitionFromToml } from "../pipeline/io.ts";
import { Pipeline } from "../pipeline/mod.ts";
import type {
  NodeTypeInfo,
  PipelineDefinition,
  PortRef,
} from "../pipeline/schema.ts";
import { CliError, usage } from "./_errors.ts";
import { locate, parsePath, type PathStep } from "./_locate.ts";
import { loadCliConfig, mergeModules } from "./_sources.ts";
import { dirname, isAbsolute, resolve } from "node:path";

/** The help text of `validate`. */
export const VALIDATE_HELP =
  `remotemedia validate <pipeline.toml|json> [options]

Checks a pipeline file and prints every error with its line; exit 1 if any.

  --config FILE       runtime.toml (Python executable; its [cli] modules)
  --module M          a module registering node types (repeatable)
  --module-path DIR   a folder to import modules from (repeatable)
  --no-types          skip the node type checks (no Python run)
  --json              the errors as one JSON object
`;

/** One validation error with where it is. */
export interface ValidationProblem {
  /** The rule (`PipelineValidationError.code`). */
  code: string;
  /** The message. */
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
}

/**
 * Every problem of a pipeline file's text.
 *
 * @param text The file's text.
 * @param format `toml` or `json`.
 * @param registry The node types, when they could be listed.
 * @returns The problems (empty when valid).
 *
 * @example
 * ```ts ignore
 * const problems = validateText(text, "toml", types);
 * ```
 */
export function validateText(
  text: string,
  format: "toml" | "json",
  registry?: ReadonlyMap<string, NodeTypeInfo>,
): { problems: ValidationProblem[]; definition?: PipelineDefinition } {
  let def: PipelineDefinition;
  try {
    def = format === "json"
      ? definitionFromJson(text)
      : definitionFromToml(text);
  } catch (e) {
    if (!(e instanceof PipelineValidationError)) throw e;
    const syntax = /at line (\d+)/.exec(e.message);
    const path = /^(\$[^:]*):/.exec(e.message)?.[1] ?? "$";
    const line = syntax
      ? Number(syntax[1])
      : locate(text, format, parsePath(path));
    return { problems: [{ code: e.code, message: e.message, line }] };
  }
  const problems: ValidationProblem[] = [];
  const at = (path: PathStep[]) => locate(text, format, path);
  const nodeIndex = new Map(def.nodes.map((n, i) => [n.id, i]));
  if (registry) {
    const known = [...registry.keys()].sort().join(", ") || "none";
    for (const [i, n] of def.nodes.entries()) {
      if (!registry.has(n.type)) {
        problems.push({
          code: "unknown_node_type",
          message:
            `$.nodes[${i}].type: node "${n.id}" has type "${n.type}", which no module registers (known types: ${known})`,
          line: at(["nodes", i, "type"]),
        });
      }
    }
    const check = (
      ref: PortRef,
      dir: "input" | "output",
      path: PathStep[],
    ) => {
      const index = nodeIndex.get(ref.node);
      if (index === undefined) return; // a graph rule reports it
      const info = registry.get(def.nodes[index].type);
      if (!info) return;
      const ports = dir === "input" ? info.inputs : info.outputs;
      if (!ports.includes(ref.port)) {
        problems.push({
          code: "unknown_port",
          message: `$${
            path.map((s) => typeof s === "number" ? `[${s}]` : `.${s}`).join("")
          }: node "${ref.node}" (type "${
            def.nodes[index].type
          }") has no ${dir} port "${ref.port}" (${dir}s: ${
            ports.join(", ") || "none"
          })`,
          line: at(path),
        });
      }
    };
    for (const [i, c] of def.connections.entries()) {
      check(c.from, "output", ["connections", i, "from"]);
      check(c.to, "input", ["connections", i, "to"]);
    }
    for (const [i, input] of def.inputs.entries()) {
      for (const [j, to] of input.to.entries()) {
        check(to, "input", ["inputs", i, "to", j]);
      }
    }
    for (const [i, o] of def.outputs.entries()) {
      check(o.from, "output", ["outputs", i, "from"]);
    }
  }
  try {
    Pipeline.fromJSON(def).validate(
      problems.length || !registry ? {} : { registry },
    );
  } catch (e) {
    if (!(e instanceof PipelineValidationError)) throw e;
    const index = e.nodeId === undefined ? undefined : nodeIndex.get(e.nodeId);
    problems.push({
      code: e.code,
      message: e.message,
      line: index === undefined ? undefined : at(["nodes", index]),
    });
  }
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { problems, definition: def };
}

/**
 * Runs `remotemedia validate`.
 *
 * @param args The arguments after `validate`.
 * @returns 0 when valid, 1 when not.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await validateCommand(["pipeline.toml"]));
 * ```
 */
export async function validateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      module: { type: "string", multiple: true },
      "module-path": { type: "string", multiple: true },
      "no-types": { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(VALIDATE_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw usage(
      "Give one pipeline file: run `remotemedia validate pipeline.toml`",
    );
  }
  const path = positionals[0];
  const format = /\.json$/i.test(path)
    ? "json"
    : /\.toml$/i.test(path)
    ? "toml"
    : undefined;
  if (!format) {
    throw new CliError(
      `Cannot validate "${path}": its extension must be .toml or .json; rename it or give the right file`,
    );
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new CliError(
      `Cannot read the pipeline "${path}": the file does not exist or is not readable; check the path`,
    );
  }
  const first = validateText(text, format);
  const definition = first.definition;
  let problems = first.problems;
  let typesChecked = false;
  if (definition && !values["no-types"]) {
    const base = dirname(resolve(path));
    const cli = await loadCliConfig(values.config);
    const { modules, modulePaths } = mergeModules([
      {
        modules: values.module ?? [],
        modulePaths: values["module-path"] ?? [],
      },
      {
        modules: definition.modules ?? [],
        modulePaths: (definition.module_paths ?? []).map((p) =>
          isAbsolute(p) ? p : resolve(base, p)
        ),
      },
      cli,
    ]);
    if (!modules.length) {
      problems.push({
        code: "no_modules",
        message:
          "No node modules were given, so node types cannot be checked: add modules = [...] (and module_paths) to the file, pass --module, or pass --no-types",
        line: undefined,
      });
    } else {
      await using executor = new MultiprocessExecutor({
        ...cli.config,
        handleSignals: false,
      });
      const listing = await executor.listNodeTypes({ modules, modulePaths });
      const imports: ValidationProblem[] = listing.errors.map((f) => ({
        code: "module_import",
        message: `Cannot import node module "${f.module}": ${f.error}${
          f.notFound
            ? ` (searched ${
              listing.modulePaths.join(", ") || "the Python path only"
            }; fix module_paths or give --module-path)`
            : f.location
            ? ` (at ${f.location})`
            : ""
        }`,
        line: definition.modules?.includes(f.module)
          ? locate(text, format, ["modules"])
          : undefined,
      }));
      typesChecked = true;
      problems = [
        ...imports,
        ...validateText(text, format, listing.types).problems,
      ];
    }
  }
  if (values.json) {
    console.log(
      JSON.stringify({ file: path, valid: !problems.length, problems }),
    );
  } else if (problems.length) {
    for (const p of problems) {
      console.error(
        `${path}${p.line ? `:${p.line}` : ""}: ${p.code}: ${p.message}`,
      );
    }
    console.error(
      `${path}: ${problems.length} error${problems.length > 1 ? "s" : ""}`,
    );
  } else {
    const d = definition!;
    console.log(
      `${path}: valid (${d.nodes.length} nodes, ${d.connections.length} connections, ${d.inputs.length} inputs, ${d.outputs.length} outputs${
        typesChecked ? "; node types checked" : ""
      })`,
    );
  }
  return problems.length ? 1 : 0;
}
