/**
 * Finding the sessions running on this machine (an `inspect.sock` in a
 * session root under the isolation base folder, that answers) and asking
 * one for its state.
 *
 * @module
 */
import { ISOLATION_BASE } from "../data/isolation.ts";
import {
  INSPECT_SOCKET_NAME,
  type InspectReply,
} from "../control/inspect_server.ts";
import { CliError } from "./_errors.ts";

/** How long a session may take to answer. */
const ANSWER_TIMEOUT_MS = 3000;

/**
 * Asks the session behind `socket` for its state.
 *
 * @param socket The inspection socket path.
 * @returns The reply.
 * @throws {Error} when the session does not answer within 3 s.
 *
 * @example
 * ```ts ignore
 * const reply = await askSession("/tmp/rmp/rmp1x2_/inspect.sock");
 * ```
 */
export async function askSession(socket: string): Promise<InspectReply> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const timer = setTimeout(() => conn.close(), ANSWER_TIMEOUT_MS);
  try {
    await conn.write(new TextEncoder().encode('{"type":"inspect"}\n'));
    const decoder = new TextDecoder();
    let text = "";
    const buf = new Uint8Array(65536);
    while (!text.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    const reply = JSON.parse(text.split("\n")[0]);
    if (reply.error) throw new Error(reply.error);
    return reply as InspectReply;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/** A session found on this machine. */
export interface FoundSession {
  /** Its inspection socket. */
  socket: string;
  /** Its answer. */
  reply: InspectReply;
}

/**
 * Every session on this machine that answers on its inspection socket.
 *
 * @returns The sessions, oldest first.
 *
 * @example
 * ```ts ignore
 * for (const s of await findSessions()) console.log(s.reply.sessionId);
 * ```
 */
export async function findSessions(): Promise<FoundSession[]> {
  const sockets: string[] = [];
  try {
    for await (const e of Deno.readDir(ISOLATION_BASE)) {
      if (!e.isDirectory) continue;
      const socket = `${ISOLATION_BASE}/${e.name}/${INSPECT_SOCKET_NAME}`;
      try {
        if (Deno.statSync(socket).isSocket) sockets.push(socket);
      } catch { /* no socket: not a session, or not ours */ }
    }
  } catch { /* no base folder: no sessions */ }
  const found = await Promise.all(sockets.map(async (socket) => {
    try {
      return { socket, reply: await askSession(socket) };
    } catch {
      return undefined; // gone, or another user's
    }
  }));
  return found.filter((f): f is FoundSession => f !== undefined)
    .sort((a, b) => b.reply.uptimeMs - a.reply.uptimeMs);
}

/**
 * The one session `query` names: a session id (or its start), an isolation
 * prefix, or the owner's pid; with no query, the only session running.
 *
 * @param query What the user typed.
 * @returns The session.
 * @throws {CliError} when none or several match.
 *
 * @example
 * ```ts ignore
 * const { socket } = await pickSession("3f2a");
 * ```
 */
export async function pickSession(query?: string): Promise<FoundSession> {
  const all = await findSessions();
  if (!all.length) {
    throw new CliError(
      "No session is running on this machine; start one with `remotemedia run pipeline.toml` (or a program using the module)",
    );
  }
  const matches = query === undefined
    ? all
    : all.filter((s) =>
      s.reply.sessionId.startsWith(query) ||
      s.reply.isolation.prefix === query ||
      String(s.reply.pid) === query
    );
  if (matches.length === 1) return matches[0];
  const list = all.map((s) =>
    `${s.reply.sessionId.slice(0, 8)} (pid ${s.reply.pid})`
  )
    .join(", ");
  throw new CliError(
    matches.length
      ? `Several sessions match "${
        query ?? ""
      }" (${list}); give more of the session id`
      : `No session matches "${query}"; running sessions: ${list}`,
  );
}
