/**
 * Direct doorbells (docs/channel-protocol.md, "Waking Deno"): a context that
 * subscribes to channel `N` links its doorbell socket under
 * `<root>bells/<N encoded>/`, so a publisher in another process wakes the
 * event loop with one byte, without a native listener thread in between.
 *
 * Bells are only a shortcut: publishers still notify `N/data`, so a missing,
 * stale or unreachable bell costs latency, never a message.
 *
 * @module
 */

/** Characters kept as they are in a bell directory name; others are `%XX`. */
const SAFE = /^[A-Za-z0-9_-]$/;
const encoder = new TextEncoder();

/**
 * The directory name for channel `name`: UTF-8 bytes outside `[A-Za-z0-9_-]`
 * become `%XX` (upper-case hex), so names with `/` or `.` stay one safe path
 * component. Python computes the same (`_bells.bell_directory_name`).
 *
 * @param name The channel name.
 * @returns The encoded directory name.
 *
 * @example
 * ```ts
 * import { bellDirectoryName } from "./bells.ts";
 * console.log(bellDirectoryName("asr.out")); // "asr%2Eout"
 * ```
 */
export function bellDirectoryName(name: string): string {
  let out = "";
  for (const ch of name) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of encoder.encode(ch)) {
      out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}

/**
 * The bell links of one context: one link per subscribed channel, counted by
 * subscriber, removed with the last one.
 */
export class BellRegistry {
  readonly #root: string;
  readonly #socketPath: string;
  readonly #tag: string;
  readonly #links = new Map<string, { path: string; users: number }>();

  /**
   * @param root The isolation root (ends with `/`).
   * @param socketPath The doorbell socket the links point to; unique per
   * context, so its file name without `.sock` names the links.
   */
  constructor(root: string, socketPath: string) {
    this.#root = root;
    this.#socketPath = socketPath;
    this.#tag = socketPath.slice(socketPath.lastIndexOf("/") + 1)
      .replace(/\.sock$/, "");
  }

  /**
   * Counts one more subscriber on `channel`; the first one links the bell.
   * Failing to link (a name too long for a path, a full disk) is ignored:
   * the channel then wakes this context through its listener thread only.
   */
  add(channel: string): void {
    const link = this.#links.get(channel);
    if (link) {
      link.users++;
      return;
    }
    const dir = `${this.#root}bells/${bellDirectoryName(channel)}`;
    const path = `${dir}/${this.#tag}`;
    try {
      Deno.mkdirSync(dir, { recursive: true });
      Deno.symlinkSync(this.#socketPath, path);
    } catch {
      return; // no shortcut for this channel; notifications still work
    }
    this.#links.set(channel, { path, users: 1 });
  }

  /** Counts one subscriber less on `channel`; the last one unlinks. */
  remove(channel: string): void {
    const link = this.#links.get(channel);
    if (!link || --link.users > 0) return;
    this.#links.delete(channel);
    unlink(link.path);
  }

  /** Unlinks every bell. */
  clear(): void {
    for (const { path } of this.#links.values()) unlink(path);
    this.#links.clear();
  }
}

function unlink(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* the isolation may be gone already */ }
}
