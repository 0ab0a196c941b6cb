/**
 * The executor's end of the runner control protocol (docs/runner-protocol.md):
 * a Unix socket that every runner connects to, carrying one JSON object per
 * line. Node output never travels here, so it cannot corrupt the protocol.
 *
 * @module
 */
import { missingPermission } from "../errors.ts";

import type { ExecutorMessage, RunnerMessage } from "../protocol/contracts.ts";

export type { ExecutorMessage, RunnerMessage };

/** Callbacks of a {@linkcode ControlServer}. */
export interface ControlServerHandlers {
  /** A runner sent a message (after its hello). */
  onMessage(nodeId: string, message: RunnerMessage): void;
  /** A runner's connection ended. */
  onDisconnect(nodeId: string): void;
  /** A line that is not a valid message (it is dropped, never thrown). */
  onProtocolError(nodeId: string | undefined, line: string): void;
}

const encoder = new TextEncoder();

/**
 * Listens on a Unix socket for runner connections and routes their messages
 * by node id.
 *
 * @example
 * ```ts ignore
 * import { ControlServer } from "@remotemedia/multiprocess/control-server";
 * const server = ControlServer.listen("/tmp/rmp-demo.sock", {
 *   onMessage: (id, m) => console.log(id, m.type),
 *   onDisconnect: () => {},
 *   onProtocolError: () => {},
 * });
 * await server.close();
 * ```
 */
export class ControlServer {
  /** The socket path runners connect to. */
  readonly path: string;
  readonly #listener: Deno.UnixListener;
  readonly #handlers: ControlServerHandlers;
  readonly #conns = new Map<string, Deno.UnixConn>();
  readonly #all = new Set<Deno.UnixConn>();
  readonly #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;
  #closed = false;

  private constructor(
    path: string,
    listener: Deno.UnixListener,
    handlers: ControlServerHandlers,
  ) {
    this.path = path;
    this.#listener = listener;
    this.#handlers = handlers;
    this.#accepting = this.#accept();
  }

  /**
   * Starts listening at `path`.
   *
   * @param path The socket path.
   * @param handlers Message, disconnect and protocol-error callbacks.
   * @returns The server.
   * @throws {MissingPermissionError} Without `--allow-read`, `--allow-write`
   * and `--allow-net` for the socket path (Deno asks all three for a Unix
   * socket).
   *
   * @example
   * ```ts ignore
   * import { ControlServer } from "@remotemedia/multiprocess/control-server";
   * const s = ControlServer.listen("/tmp/x.sock", { onMessage() {}, onDisconnect() {}, onProtocolError() {} });
   * await s.close();
   * ```
   */
  static listen(path: string, handlers: ControlServerHandlers): ControlServer {
    let listener: Deno.UnixListener;
    try {
      listener = Deno.listen({ transport: "unix", path });
    } catch (e) {
      throw missingPermission(
        e,
        `Cannot listen on the control socket "${path}"`,
      ) ?? e;
    }
    return new ControlServer(path, listener, handlers);
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.#all.add(conn);
      const task = this.#read(conn).finally(() => {
        this.#all.delete(conn);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  async #read(conn: Deno.UnixConn): Promise<void> {
    let nodeId: string | undefined;
    const decoder = new TextDecoder();
    let pending = "";
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) break;
        pending += decoder.decode(buffer.subarray(0, n), { stream: true });
        let newline: number;
        while ((newline = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (!line.trim()) continue;
          let message: RunnerMessage;
          try {
            message = JSON.parse(line);
            if (typeof message !== "object" || !message || !message.type) {
              throw new Error("Not a message");
            }
          } catch {
            this.#handlers.onProtocolError(nodeId, line);
            continue;
          }
          if (nodeId === undefined) {
            if (
              message.type !== "hello" || typeof message.node_id !== "string"
            ) {
              this.#handlers.onProtocolError(undefined, line);
              continue;
            }
            nodeId = message.node_id;
            this.#conns.set(nodeId, conn);
          }
          this.#handlers.onMessage(nodeId, message);
        }
      }
    } finally {
      try {
        conn.close();
      } catch { /* already closed */ }
      if (nodeId !== undefined) {
        if (this.#conns.get(nodeId) === conn) this.#conns.delete(nodeId);
        this.#handlers.onDisconnect(nodeId);
      }
    }
  }

  /**
   * Sends one message to a runner; false when it is not connected.
   *
   * @param nodeId The runner's node id.
   * @param message A JSON-serializable message.
   * @returns Whether it was written.
   *
   * @example
   * ```ts ignore
   * server.send("asr", { type: "shutdown" });
   * ```
   */
  async send(
    nodeId: string,
    message: ExecutorMessage,
  ): Promise<boolean> {
    const conn = this.#conns.get(nodeId);
    if (!conn) return false;
    const bytes = encoder.encode(JSON.stringify(message) + "\n");
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

  /**
   * Closes the listener and every connection (runners see end of file).
   *
   * @example
   * ```ts ignore
   * await server.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    for (const conn of this.#all) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    await this.#accepting;
    await Promise.all(this.#tasks);
    try {
      Deno.removeSync(this.path);
    } catch { /* already gone */ }
  }
}
