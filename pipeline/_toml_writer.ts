/**
 * The TOML writer for pipeline definitions: the same algorithm as the Python
 * writer, so both sides write byte-identical files for the same definition,
 * floats aside.
 *
 * @module
 */

import type { ConfigValue, PipelineDefinition, PortRef } from "./schema.ts";

function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (c === 8) out += "\\b";
    else if (c === 9) out += "\\t";
    else if (c === 10) out += "\\n";
    else if (c === 12) out += "\\f";
    else if (c === 13) out += "\\r";
    else if (c < 0x20 || c === 0x7f) {
      out += "\\u" + c.toString(16).toUpperCase().padStart(4, "0");
    } else out += ch;
  }
  return out + '"';
}

function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

function tomlValue(v: ConfigValue): string {
  if (typeof v === "string") return tomlString(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    // JS has one number type: integral values are written as TOML integers.
    if (Number.isInteger(v) && Math.abs(v) < 2 ** 63) {
      return BigInt(v).toString();
    }
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  const entries = Object.entries(v);
  if (entries.length === 0) return "{}";
  return `{ ${
    entries.map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x)}`).join(", ")
  } }`;
}

function tomlPortRef(r: PortRef): string {
  return `{ node = ${tomlString(r.node)}, port = ${tomlString(r.port)} }`;
}

/**
 * Writes a definition as TOML text.
 *
 * @param def A shape-checked definition.
 * @returns TOML text ending in a newline.
 */
export function definitionToToml(def: PipelineDefinition): string {
  const lines = ["version = 1"];
  if (def.name !== undefined) lines.push(`name = ${tomlString(def.name)}`);
  for (const n of def.nodes) {
    lines.push("", "[[nodes]]", `id = ${tomlString(n.id)}`);
    lines.push(`type = ${tomlString(n.type)}`);
    if (n.env !== undefined) lines.push(`env = ${tomlString(n.env)}`);
    if (n.host !== undefined) lines.push(`host = ${tomlString(n.host)}`);
    if (n.restart !== undefined) {
      lines.push(`restart = ${tomlValue({ ...n.restart })}`);
    }
    for (const k of ["process_timeout_secs", "ping_timeout_secs"] as const) {
      if (n[k] !== undefined) lines.push(`${k} = ${tomlValue(n[k])}`);
    }
    const entries = Object.entries(n.config);
    if (entries.length > 0) {
      lines.push("", "[nodes.config]");
      for (const [k, v] of entries) {
        lines.push(`${tomlKey(k)} = ${tomlValue(v)}`);
      }
    }
  }
  for (const c of def.connections) {
    lines.push("", "[[connections]]");
    lines.push(`from = ${tomlPortRef(c.from)}`, `to = ${tomlPortRef(c.to)}`);
  }
  for (const i of def.inputs) {
    lines.push("", "[[inputs]]", `name = ${tomlString(i.name)}`);
    lines.push(`to = [${i.to.map(tomlPortRef).join(", ")}]`);
  }
  for (const o of def.outputs) {
    lines.push("", "[[outputs]]", `name = ${tomlString(o.name)}`);
    lines.push(`from = ${tomlPortRef(o.from)}`);
  }
  return lines.join("\n") + "\n";
}
