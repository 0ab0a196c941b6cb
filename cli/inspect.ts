/**
 * `remotemedia inspect [SESSION] [--watch]`: from another terminal, the
 * node states, channel occupancy, message counts and RSS of a session
 * running on this machine (served by the session on an owner-only socket in
 * its root); with no session, the list of sessions.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { InspectReply } from "../control/inspect_server.ts";
import { usage } from "./_errors.ts";
import { onInterrupt } from "./_interrupt.ts";
import { askSession, findSessions, pickSession } from "./_sessions.ts";

/** The help text of `inspect`. */
export const INSPECT_HELP = `remotemedia inspect [SESSION] [options]

With no SESSION: the sessions running on this machine. With SESSION (the
start of its id, its prefix or its owner's pid): its nodes and channels.

  --watch          refresh every second (Ctrl-C to stop)
  --interval MS    the refresh period (default 1000)
  --json           JSON (one object per refresh)
`;

function mib(bytes: number | undefined): string {
  return bytes === undefined ? "-" : `${(bytes / 1048576).toFixed(1)} MiB`;
}

/**
 * The text of one session's state.
 *
 * @param r The session's reply.
 * @returns Lines.
 *
 * @example
 * ```ts ignore
 * console.log(renderSession(await askSession(socket)).join("\n"));
 * ```
 */
export function renderSession(r: InspectReply): string[] {
  const lines = [
    `session ${r.sessionId}${
      r.pipeline ? ` (${r.pipeline})` : ""
    }  pid ${r.pid}  up ${(r.uptimeMs / 1000).toFixed(1)} s  ${
      r.ready ? "ready" : "starting"
    }`,
    "",
    `${"node".padEnd(16)} ${"type".padEnd(14)} ${"state".padEnd(12)} ${
      "pid".padEnd(8)
    } ${"in".padEnd(8)} ${"out".padEnd(8)} rss`,
  ];
  for (const n of r.nodes) {
    const p = r.stats.processes.find((q) => q.nodeId === n.nodeId);
    lines.push(
      `${n.nodeId.padEnd(16)} ${n.type.padEnd(14)} ${n.state.padEnd(12)} ${
        String(n.pid ?? "-").padEnd(8)
      } ${String(p?.received ?? "-").padEnd(8)} ${
        String(p?.sent ?? "-").padEnd(8)
      } ${mib(p?.rssBytes)}`,
    );
  }
  lines.push(
    "",
    `${"channel".padEnd(24)} ${"messages".padEnd(10)} ${
      "bytes".padEnd(12)
    } occupancy`,
  );
  for (const c of r.stats.channels) {
    lines.push(
      `${c.name.padEnd(24)} ${String(c.messages).padEnd(10)} ${
        String(c.bytes).padEnd(12)
      } ${c.occupancy}/${r.channelCapacity}`,
    );
  }
  return lines;
}

/**
 * Runs `remotemedia inspect`.
 *
 * @param args The arguments after `inspect`.
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await inspectCommand([]));
 * ```
 */
export async function inspectCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      watch: { type: "boolean", short: "w" },
      interval: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(INSPECT_HELP);
    return 0;
  }
  if (positionals.length > 1) throw usage("Give at most one session");
  const interval = Number(values.interval ?? 1000);
  if (!Number.isFinite(interval) || interval < 50) {
    throw usage(`Invalid --interval "${values.interval}": give at least 50 ms`);
  }
  if (!positionals.length) {
    const all = await findSessions();
    if (values.json) {
      console.log(JSON.stringify(all.map((s) => s.reply)));
      return 0;
    }
    if (!all.length) {
      console.log("No sessions are running on this machine.");
      return 0;
    }
    console.log(
      `${"session".padEnd(34)} ${"pid".padEnd(8)} ${"nodes".padEnd(6)} ${
        "state".padEnd(9)
      } ${"up".padEnd(9)} pipeline`,
    );
    for (const { reply: r } of all) {
      console.log(
        `${r.sessionId.padEnd(34)} ${String(r.pid).padEnd(8)} ${
          String(r.nodes.length).padEnd(6)
        } ${(r.ready ? "ready" : "starting").padEnd(9)} ${
          `${(r.uptimeMs / 1000).toFixed(1)} s`.padEnd(9)
        } ${r.pipeline ?? ""}`,
      );
    }
    return 0;
  }
  const { socket } = await pickSession(positionals[0]);
  const show = (r: InspectReply) => {
    if (values.json) console.log(JSON.stringify(r));
    else console.log(renderSession(r).join("\n"));
  };
  if (!values.watch) {
    show(await askSession(socket));
    return 0;
  }
  const tty = Deno.stdout.isTerminal() && !values.json;
  let stop = false;
  const remove = onInterrupt(() => {
    stop = true;
    return Promise.resolve();
  });
  try {
    while (!stop) {
      let r: InspectReply;
      try {
        r = await askSession(socket);
      } catch {
        console.log("The session has ended.");
        return 0;
      }
      if (tty) console.log("\x1b[H\x1b[2J" + renderSession(r).join("\n"));
      else show(r);
      await new Promise((res) => setTimeout(res, interval));
    }
  } finally {
    remove();
  }
  return 0;
}
