/**
 * A process that owns one live isolation, for the isolation tests.
 *
 * `deno run -A isolation_owner.ts context` opens a ChannelContext with one
 * channel and a sent sample (so shared memory exists); `... session` starts a
 * session with one echo node (a runner maps the shared memory too;
 * `spawned-session`: one spawned, not forked by the fork server). Then it
 * prints one JSON line `{prefix, root, pid, hostPid, runnerPid?}` and answers
 * commands on stdin, one JSON line each:
 * - `sweep <prefix>...`: sweeps those prefixes, prints `{removed}`;
 * - `spawn`: starts `sleep 60` as a child, prints `{pid}`.
 * PIDs other than `pid` are as the parent PID namespace sees them.
 * It lives until killed or until stdin ends.
 *
 * Uses only the API that existed before lock files (commit 69a4b0d), so the
 * PID-namespace test can run against that commit too.
 *
 * @module
 */
import { ChannelContext } from "../../data/channel/mod.ts";
import { MultiprocessExecutor } from "../../control/executor.ts";
import { type Isolation, sweepStaleIsolations } from "../../data/isolation.ts";
import { Pipeline } from "../../pipeline/mod.ts";
import { binary } from "../../data/runtime_data/mod.ts";

const repo = new URL("../..", import.meta.url).pathname;
const mode = Deno.args[0] ?? "context";
let isolation: Isolation;
let runnerPid: number | undefined;
const keep: unknown[] = [];

if (mode === "session" || mode === "spawned-session") {
  const ex = new MultiprocessExecutor({
    python: { executable: `${repo}.venv/bin/python` },
    initTimeoutSecs: 30,
    // Only this mode passes the option (older commits do not know it).
    ...(mode === "spawned-session" ? { forkServer: false } : {}),
  });
  const pipeline = new Pipeline().addNode("echo", "n").addInput("in", "n", "in")
    .addOutput("out", "n", "out");
  const session = await ex.createSession(pipeline, {
    modules: ["demo_nodes"],
    modulePaths: [`${repo}examples/nodes`],
    printLogs: false,
  });
  await session.initialize();
  isolation = session.isolation;
  runnerPid = session.status()[0].pid;
  keep.push(ex, session);
} else {
  const ctx = await ChannelContext.create();
  const channel = ctx.channel("live");
  const sub = channel.subscriber();
  const pub = channel.publisher();
  await pub.publish(binary(new Uint8Array(1024)));
  const sample = await sub.receive({ timeoutMs: 5000 });
  if (!sample) throw new Error("The owner's own sample did not arrive");
  isolation = ctx.isolation;
  keep.push(ctx, sub, pub, sample);
}

// In a PID namespace without its own /proc, /proc still shows the parent
// namespace: /proc/self names this process as the test sees it, and a child's
// status has both of its PIDs (NSpid).
const hostPid = Number(Deno.readLinkSync("/proc/self"));
function parentOf(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
  } catch {
    return undefined;
  }
}
/** A descendant (a child, or a fork server's child) with NSpid `pid`. */
function hostPidOf(pid: number): number {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const status = Deno.readTextFileSync(`/proc/${entry.name}/status`);
      const nspids = /^NSpid:\s+(.*)$/m.exec(status)?.[1].trim().split(/\s+/);
      if (Number(nspids?.at(-1)) !== pid) continue;
      let ancestor = parentOf(Number(entry.name));
      for (let up = 0; up < 3 && ancestor; up++) {
        if (ancestor === hostPid) return Number(entry.name);
        ancestor = parentOf(ancestor);
      }
    } catch { /* gone meanwhile */ }
  }
  throw new Error(
    `No descendant of ${hostPid} has PID ${pid} in its namespace`,
  );
}

const encoder = new TextEncoder();
const say = (value: unknown) =>
  Deno.stdout.writeSync(encoder.encode(`${JSON.stringify(value)}\n`));
say({
  prefix: isolation.prefix,
  root: isolation.root,
  pid: Deno.pid,
  hostPid,
  runnerPid: runnerPid === undefined ? undefined : hostPidOf(runnerPid),
});

const children: Deno.ChildProcess[] = [];
let pending = "";
const decoder = new TextDecoder();
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = pending.indexOf("\n")) >= 0) {
    const [command, ...args] = pending.slice(0, newline).trim().split(/\s+/);
    pending = pending.slice(newline + 1);
    if (command === "sweep") {
      say({ removed: sweepStaleIsolations({ prefixes: args }) });
    } else if (command === "spawn") {
      const child = new Deno.Command("sleep", {
        args: ["60"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      children.push(child);
      say({ pid: hostPidOf(child.pid) });
    }
  }
}
for (const child of children) child.kill("SIGKILL");
Deno.exit(0);
