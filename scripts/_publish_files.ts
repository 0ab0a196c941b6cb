/**
 * The JSR file set of this module, as `deno publish --dry-run` lists it, and
 * a copy of it that runs offline (what the wheel carries).
 *
 * @module
 */

import { dirname, join, relative } from "node:path";

const root = new URL("../", import.meta.url).pathname;

/**
 * The files `deno publish` would upload, relative to the root.
 *
 * @returns The sorted relative paths.
 *
 * @example
 * ```ts ignore
 * console.log((await publishFileSet()).includes("mod.ts")); // true
 * ```
 */
export async function publishFileSet(): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty", "--no-check"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `deno publish --dry-run failed (exit ${out.code}): ${text}`,
    );
  }
  const files = [...text.matchAll(/^\s+(file:\/\/\S+) \(/gm)].map((m) =>
    relative(root, new URL(m[1]).pathname)
  );
  if (!files.includes("mod.ts")) {
    throw new Error(`deno publish --dry-run listed no mod.ts: ${text}`);
  }
  return files.sort();
}

/** The npm packages the module imports, vendored into the offline copy. */
function npmImports(config: { imports: Record<string, string> }): Array<
  [string, string, string]
> {
  const out: Array<[string, string, string]> = [];
  for (const [name, target] of Object.entries(config.imports)) {
    const m = target.match(/^npm:((?:@[^/]+\/)?[^@]+)@(.+)$/);
    if (m) out.push([name, m[1], m[2]]);
  }
  return out;
}

/**
 * Copies the publish file set to `dest` so that `deno run` of its
 * `control/session_server.ts` needs no network: npm imports are copied from
 * Deno's npm cache into `vendor/` and its `deno.json` maps them there (no
 * tasks, no lock file).
 *
 * @param dest The folder to fill (created; must not exist yet).
 * @returns The files written, relative to `dest`.
 *
 * @example
 * ```ts ignore
 * await stageDenoModule("/tmp/x/_deno");
 * ```
 */
export async function stageDenoModule(dest: string): Promise<string[]> {
  const files = await publishFileSet();
  const written: string[] = [];
  for (const file of files) {
    if (file === "deno.json") continue;
    await Deno.mkdir(dirname(join(dest, file)), { recursive: true });
    await Deno.copyFile(join(root, file), join(dest, file));
    written.push(file);
  }
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const npm = npmImports(config);
  if (npm.length) {
    // Make sure the npm cache has them, then copy them.
    const cached = await new Deno.Command(Deno.execPath(), {
      args: ["cache", ...npm.map(([, pkg, v]) => `npm:${pkg}@${v}`)],
      stdout: "null",
      stderr: "inherit",
    }).output();
    if (!cached.success) throw new Error("deno cache of npm imports failed");
    const info = JSON.parse(
      new TextDecoder().decode(
        (await new Deno.Command(Deno.execPath(), {
          args: ["info", "--json"],
          stdout: "piped",
        }).output()).stdout,
      ),
    );
    for (const [name, pkg, version] of npm) {
      const from = join(info.npmCache, "registry.npmjs.org", pkg, version);
      const to = join(dest, "vendor", pkg);
      const meta = JSON.parse(
        await Deno.readTextFile(join(from, "package.json")),
      );
      const exp = meta.exports?.["."] ?? meta.exports;
      const entry: unknown = exp?.import?.default ?? exp?.import ??
        meta.module;
      if (typeof entry !== "string") {
        throw new Error(`cannot tell the ESM entry of npm:${pkg}@${version}`);
      }
      for await (const f of walk(from)) {
        const rel = relative(from, f);
        if (rel.split("/").some((part) => part.startsWith("."))) continue;
        await Deno.mkdir(dirname(join(to, rel)), { recursive: true });
        await Deno.copyFile(f, join(to, rel));
        written.push(join("vendor", pkg, rel));
      }
      // The source imports the full specifier (a plain URL import has no
      // import map); both spellings map to the vendored copy.
      config.imports[name] = `./${join("vendor", pkg, entry)}`;
      config.imports[`npm:${pkg}@${version}`] = config.imports[name];
    }
  }
  const carried = {
    name: config.name,
    version: config.version,
    license: config.license,
    exports: config.exports,
    imports: config.imports,
    lock: false,
  };
  await Deno.writeTextFile(
    join(dest, "deno.json"),
    JSON.stringify(carried, null, 2) + "\n",
  );
  written.push("deno.json");
  return written.sort();
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) yield* walk(path);
    else if (e.isFile) yield path;
  }
}

if (import.meta.main) {
  const [dest] = Deno.args;
  if (!dest) {
    throw new Error("usage: deno run -A scripts/_publish_files.ts <dest>");
  }
  const written = await stageDenoModule(dest);
  console.log(`staged ${written.length} files into ${dest}`);
}
