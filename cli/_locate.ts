/**
 * Finds the line of a definition path (`nodes[2].type`) in the text of a
 * pipeline file, TOML or JSON, so validation errors point into the file.
 *
 * @module
 */

/** One step of a path: a key or an array index. */
export type PathStep = string | number;

/**
 * Parses a schema error path such as `$.nodes[1].type` into steps.
 *
 * @param path The path (with or without the leading `$`).
 * @returns The steps.
 *
 * @example
 * ```ts
 * import { parsePath } from "./_locate.ts";
 * console.log(parsePath("$.nodes[1].type")); // ["nodes", 1, "type"]
 * ```
 */
export function parsePath(path: string): PathStep[] {
  const steps: PathStep[] = [];
  for (const m of path.replace(/^\$/, "").matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)) {
    steps.push(m[1] !== undefined ? m[1] : Number(m[2]));
  }
  return steps;
}

/**
 * The 1-based line where `path` is defined in `text`, or the nearest
 * enclosing element's line; undefined when not even the first step is found.
 *
 * @param text The file's text.
 * @param format `toml` or `json`.
 * @param path The steps.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { locate } from "./_locate.ts";
 * console.log(locate('version = 1\n[[nodes]]\nid = "a"\n', "toml", ["nodes", 0, "id"])); // 3
 * ```
 */
export function locate(
  text: string,
  format: "toml" | "json",
  path: PathStep[],
): number | undefined {
  return format === "json" ? locateJson(text, path) : locateToml(text, path);
}

function locateToml(text: string, path: PathStep[]): number | undefined {
  const lines = text.split("\n");
  const header = (l: string) => /^\s*\[/.test(l);
  const keyLine = (from: number, to: number, key: string) => {
    const re = new RegExp(`^\\s*"?${escape(key)}"?\\s*=`);
    for (let i = from; i < to; i++) if (re.test(lines[i])) return i;
    return undefined;
  };
  if (path.length === 0) return undefined;
  const [table, index, key] = path;
  if (typeof index !== "number") {
    // A top-level key, before the first table header.
    const end = lines.findIndex(header);
    const at = keyLine(0, end < 0 ? lines.length : end, String(table));
    return at === undefined ? undefined : at + 1;
  }
  const re = new RegExp(
    `^\\s*\\[\\[\\s*"?${escape(String(table))}"?\\s*\\]\\]`,
  );
  let seen = -1;
  for (let i = 0; i < lines.length; i++) {
    if (!re.test(lines[i])) continue;
    if (++seen !== index) continue;
    if (key === undefined) return i + 1;
    let end = i + 1;
    while (end < lines.length && !header(lines[end])) end++;
    const at = keyLine(i + 1, end, String(key));
    return (at ?? i) + 1;
  }
  // An inline array (`nodes = [ ... ]`): the key's line.
  const at = keyLine(0, lines.length, String(table));
  return at === undefined ? undefined : at + 1;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A small JSON scanner that records the line of every value by path. */
function locateJson(text: string, path: PathStep[]): number | undefined {
  const lines = new Map<string, number>();
  let i = 0;
  let line = 1;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) {
      if (text[i] === "\n") line++;
      i++;
    }
  };
  const str = (): string => {
    let s = "";
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") {
        s += text[i + 1];
        i += 2;
      } else {
        if (text[i] === "\n") line++;
        s += text[i++];
      }
    }
    i++;
    return s;
  };
  const value = (at: PathStep[], keyLine: number): void => {
    ws();
    lines.set(JSON.stringify(at), keyLine);
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      while (i < text.length && text[i] !== "}") {
        ws();
        if (text[i] !== '"') return;
        const kl = line;
        const k = str();
        ws();
        if (text[i] !== ":") return;
        i++;
        value([...at, k], kl);
        ws();
        if (text[i] === ",") i++;
        ws();
      }
      i++;
    } else if (c === "[") {
      i++;
      let n = 0;
      ws();
      while (i < text.length && text[i] !== "]") {
        ws();
        value([...at, n++], line);
        ws();
        if (text[i] === ",") i++;
        ws();
      }
      i++;
    } else if (c === '"') {
      str();
    } else {
      while (i < text.length && !/[,\]}\s]/.test(text[i])) i++;
    }
  };
  try {
    value([], 1);
  } catch { /* a broken file: use what was found */ }
  for (let n = path.length; n > 0; n--) {
    const found = lines.get(JSON.stringify(path.slice(0, n)));
    if (found !== undefined) return found;
  }
  return undefined;
}
