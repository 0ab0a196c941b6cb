/**
 * Reading and writing pipeline definitions: JSON and TOML text to a
 * shape-checked definition, and `.json`/`.toml` files by extension.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- a copy imported by plain URL (no JSR import map) must resolve it too
import { parse as parseToml, TomlError } from "npm:smol-toml@1.9.1";
import { missingPermission, PipelineValidationError } from "../errors.ts";
import { checkDefinition } from "./_shape.ts";
import { definitionToToml } from "./_toml_writer.ts";
import type { PipelineDefinition } from "./schema.ts";

/**
 * A shape-checked definition from a parsed value or JSON text.
 *
 * @param def The definition, or its JSON text.
 * @returns A normalized copy.
 * @throws {PipelineValidationError} `invalid_schema` for bad JSON or a bad field.
 */
export function definitionFromJson(def: unknown): PipelineDefinition {
  let raw = def;
  if (typeof def === "string") {
    try {
      raw = JSON.parse(def);
    } catch (e) {
      throw new PipelineValidationError(
        "invalid_schema",
        `$: invalid JSON: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
  return checkDefinition(raw);
}

/**
 * A shape-checked definition from TOML text.
 *
 * @param text TOML text.
 * @returns The definition.
 * @throws {PipelineValidationError} `invalid_schema` for bad TOML or a bad field.
 */
export function definitionFromToml(text: string): PipelineDefinition {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      throw new PipelineValidationError(
        "invalid_schema",
        `$: invalid TOML at line ${e.line}, column ${e.column}: ${
          e.message.split("\n")[0].replace(/^Invalid TOML document: /, "")
        }`,
        { cause: e },
      );
    }
    throw new PipelineValidationError(
      "invalid_schema",
      `$: invalid TOML: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return definitionFromJson(raw);
}

function extensionOf(path: string | URL): "json" | "toml" {
  const s = path instanceof URL ? path.pathname : path;
  const m = /\.([A-Za-z]+)$/.exec(s);
  const ext = m?.[1].toLowerCase();
  if (ext === "json" || ext === "toml") return ext;
  throw new TypeError(
    `Cannot tell the pipeline format of "${
      String(path)
    }": use a .json or .toml file`,
  );
}

/**
 * Loads a definition from a `.json` or `.toml` file (by extension).
 *
 * @param path The file.
 * @returns The shape-checked definition.
 * @throws {MissingPermissionError} Without read permission for the file.
 */
export async function loadDefinition(
  path: string | URL,
): Promise<PipelineDefinition> {
  const ext = extensionOf(path);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw missingPermission(e, `Cannot read the pipeline file "${path}"`) ??
      e;
  }
  return ext === "json" ? definitionFromJson(text) : definitionFromToml(text);
}

/**
 * Saves a definition as `.json` (2-space indented) or `.toml`, by extension.
 *
 * @param path The file.
 * @param def The definition.
 * @throws {MissingPermissionError} Without write permission for the file.
 */
export async function saveDefinition(
  path: string | URL,
  def: PipelineDefinition,
): Promise<void> {
  const ext = extensionOf(path);
  const text = ext === "json"
    ? JSON.stringify(def, null, 2) + "\n"
    : definitionToToml(def);
  try {
    await Deno.writeTextFile(path, text);
  } catch (e) {
    throw missingPermission(e, `Cannot write the pipeline file "${path}"`) ??
      e;
  }
}
