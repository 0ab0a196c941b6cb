/**
 * The node type cache: what `--list-types` reported for a set of modules,
 * kept in memory and in a cache folder, keyed by everything that decides the
 * answer (interpreter, SDK sources, modules, folders, Python path) and valid
 * only while every source file the listing imported still has the same
 * contents (SHA-256, as the runner hashed them when it imported them). A hit
 * spawns no Python process; a listing with import errors is never kept.
 *
 * @module
 */
import type { NodeTypeInfo } from "../pipeline/mod.ts";
import type { ModuleImportFailure } from "../errors.ts";

/** What the runner reported for a set of modules. */
export interface NodeTypeListing {
  /** Every registered type with its ports. */
  types: Map<string, NodeTypeInfo>;
  /** Modules that failed to import, with the error and where. */
  errors: ModuleImportFailure[];
  /** The module folders searched (absolute), before the Python path. */
  modulePaths: string[];
  /** Those of `modulePaths` that do not exist. */
  missingPaths: string[];
}

/** A listing with the source files it depends on (path to SHA-256). */
export interface CachedListing {
  /** The listing. */
  listing: NodeTypeListing;
  /** Every source file the modules' import read, with its SHA-256. */
  files: Record<string, string>;
}

/** The format of a cache file; a file of another format is a miss. */
const FORMAT = 1;

const encoder = new TextEncoder();

/** The hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
  const digest = await crypto.subtle.digest(
    "SHA-256",
    data as Uint8Array<ArrayBuffer>,
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/** Whether every file still has the contents hashed, and every missing
 * folder is still missing (a new folder may shadow a module). */
export async function stillValid(entry: CachedListing): Promise<boolean> {
  for (const path of entry.listing.missingPaths) {
    try {
      Deno.statSync(path);
      return false;
    } catch { /* still missing */ }
  }
  const checks = await Promise.all(
    Object.entries(entry.files).map(async ([path, hash]) => {
      try {
        return await sha256Hex(await Deno.readFile(path)) === hash;
      } catch {
        return false;
      }
    }),
  );
  return checks.every(Boolean);
}

/** Reads the cache file of `key` in `dir`; undefined when there is none or
 * it is unreadable (a cache never fails a session). */
export async function readCached(
  dir: string,
  key: string,
): Promise<CachedListing | undefined> {
  try {
    const raw = JSON.parse(await Deno.readTextFile(`${dir}/${key}.json`));
    if (raw.format !== FORMAT || raw.key !== key) return undefined;
    return {
      listing: {
        types: new Map(
          Object.entries(raw.types as Record<string, NodeTypeInfo>),
        ),
        errors: [],
        modulePaths: raw.modulePaths,
        missingPaths: raw.missingPaths,
      },
      files: raw.files,
    };
  } catch {
    return undefined;
  }
}

/** Writes the cache file of `key` in `dir` (atomically: a temporary file
 * renamed over it). Failures are ignored: the cache is an optimisation. */
export async function writeCached(
  dir: string,
  key: string,
  entry: CachedListing,
): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${dir}/${key}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(
      tmp,
      JSON.stringify({
        format: FORMAT,
        key,
        types: Object.fromEntries(entry.listing.types),
        modulePaths: entry.listing.modulePaths,
        missingPaths: entry.listing.missingPaths,
        files: entry.files,
      }),
    );
    await Deno.rename(tmp, `${dir}/${key}.json`);
  } catch { /* read-only or no such home: memory only */ }
}

const SDK_DIR = new URL("../python/remotemedia_multiprocess/", import.meta.url);
let sdkFingerprint: Promise<string> | undefined;

/** The SHA-256 of the SDK's Python sources bundled with this module (node
 * registration and the listing itself live there), computed once. */
export function sdkSourcesHash(): Promise<string> {
  sdkFingerprint ??= (async () => {
    const parts: string[] = [];
    try {
      const names = [...Deno.readDirSync(SDK_DIR)]
        .filter((e) => e.isFile && e.name.endsWith(".py"))
        .map((e) => e.name).sort();
      for (const name of names) {
        parts.push(
          name,
          await sha256Hex(await Deno.readFile(new URL(name, SDK_DIR))),
        );
      }
    } catch { /* not readable: the key still names the SDK version */ }
    return await sha256Hex(parts.join("\n"));
  })();
  return sdkFingerprint;
}

/** A stat-based identity of the interpreter (path, size, mtime, inode). */
export function interpreterIdentity(executable: string): string {
  if (!executable.includes("/")) return executable;
  try {
    const real = Deno.realPathSync(executable);
    const st = Deno.statSync(real);
    return `${executable}|${real}|${st.size}|${st.mtime?.getTime()}|${st.ino}`;
  } catch {
    return executable;
  }
}
