/**
 * The inspection socket of a session: `inspect.sock` in the session's
 * isolation root, owner-only (mode 0600, in a folder only the owner can
 * enter), answering one JSON request per line with one JSON line. It serves
 * what `session.status()` and `session.stats()` already give, plus what a
 * read-only tap needs to open a channel (the isolation and channel
 * settings). The `remotemedia inspect` and `tap` commands are its clients.
 *
 * @module
 */
import type { Isolation } from "../data/isolation.ts";
import type { NodeStatus, SessionStats } from "./session.ts";

/** The file name of the inspection socket inside a session's root. */
export const INSPECT_SOCKET_NAME = "inspect.sock";

/** Most bytes of one request line; longer requests are answered with an error. */
const MAX_REQUEST_BYTES = 4096;

/** What the inspection socket answers to `{"type":"inspect"}`. */
export interface InspectReply {
  /** The session id. */
  sessionId: string;
  /** The pipeline's name, if it has one. */
  pipeline?: string;
  /** The process id of the Deno program that owns the session. */
  pid: number;
  /** Milliseconds since the session started. */
  uptimeMs: number;
  /** True once every node is ready. */
  ready: boolean;
  /** The isolation (prefix and root) of the session's channels. */
  isolation: Isolation;
  /** The channels' capacity (each subscriber's buffer). */
  channelCapacity: number;
  /** The channels' subscriber limit. */
  maxSubscribers: number;
  /** Every channel name. */
  channels: string[];
  /** Node states. */
  nodes: NodeStatus[];
  /** Channel and process statistics. */
  stats: SessionStats;
}

/** What an {@linkcode InspectServer} asks its session for. */
export interface InspectSource {
  /** The reply, built fresh for each request. */
  inspect(): Promise<InspectReply>;
}

/**
 * Serves a session's state on `<root>inspect.sock`, owner-only.
 *
 * @example
 * ```ts ignore
 * const server = InspectServer.listen(`${root}inspect.sock`, { inspect: async () => reply });
 * await server.close();
 * ```
 */
export class InspectServer {
  /** The socket path. */
  readonly path: string;
  readonly #listener: Deno.UnixListener;
  readonly #source: InspectSource;
  readonly #conns = new Set<Deno.UnixConn>();
  readonly #accepting: Promise<void>;

  private constructor(
    path: string,
    listener: Deno.UnixListener,
    source: InspectSource,
  ) {
    this.path = path;
    this.#listener = listener;
    this.#source = source;
    this.#accepting = this.#accept();
  }

  /**
   * Listens at `path` and makes the socket owner-only.
   *
   * @param path The socket path.
   * @param source Where the replies come from.
   * @returns The server.
   *
   * @example
   * ```ts ignore
   * const server = InspectServer.listen("/tmp/rmp/x/inspect.sock", session);
   * ```
   */
  static listen(path: string, source: InspectSource): InspectServer {
    const listener = Deno.listen({ transport: "unix", path });
    try {
      Deno.chmodSync(path, 0o600);
    } catch (e) {
      listener.close();
      throw e;
    }
    return new InspectServer(path, listener, source);
  }

  async #accept(): Promise<void> {
    while (true) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      this.#conns.add(conn);
      this.#serve(conn).finally(() => {
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch { /* already closed */ }
      });
    }
  }

  async #serve(conn: Deno.UnixConn): Promise<void> {
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffered = "";
    const chunk = new Uint8Array(4096);
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(chunk);
      } catch {
        return;
      }
      if (n === null) return;
      buffered += decoder.decode(chunk.subarray(0, n), { stream: true });
      if (buffered.length > MAX_REQUEST_BYTES) {
        await write(conn, encoder, { error: "Request too long" });
        return;
      }
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        let reply: unknown;
        try {
          const request = JSON.parse(line);
          reply = request?.type === "inspect" ? await this.#source.inspect() : {
            error: `Unknown request type ${JSON.stringify(request?.type)}`,
          };
        } catch (e) {
          reply = { error: `Bad request: ${(e as Error).message}` };
        }
        if (!await write(conn, encoder, reply)) return;
      }
    }
  }

  /**
   * Stops listening, ends every connection and removes the socket file.
   *
   * @example
   * ```ts ignore
   * await server.close();
   * ```
   */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    await this.#accepting;
    try {
      Deno.removeSync(this.path);
    } catch { /* already removed */ }
  }
}

async function write(
  conn: Deno.UnixConn,
  encoder: TextEncoder,
  value: unknown,
): Promise<boolean> {
  const bytes = encoder.encode(
    JSON.stringify(value, (_k, v) => typeof v === "bigint" ? Number(v) : v) +
      "\n",
  );
  try {
    let written = 0;
    while (written < bytes.length) {
      written += await conn.write(bytes.subarray(written));
    }
    return true;
  } catch {
    return false;
  }
}
