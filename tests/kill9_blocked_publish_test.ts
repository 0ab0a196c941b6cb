/**
 * A runner blocked publishing into a channel nobody reads any more (its Deno
 * process was killed with -9) must exit soon after its control socket's end
 * of file, not when its exit watchdog fires (1.8 s) or its publish times out.
 * Found by the reliability suite's `deno_kill9` (fork server off).
 */
import { assert, assertEquals } from "./support/assert.ts";
import {
  alive,
  executor,
  modules,
  single,
  waitUntil,
} from "./support/sessions.ts";
import { binary } from "../data/runtime_data/mod.ts";
import { sweepStaleIsolations } from "../data/isolation.ts";

const owner = new URL("./fixtures/blocked_output_owner.ts", import.meta.url)
  .pathname;

Deno.test("a runner stuck publishing exits soon after its Deno process is killed with -9", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", owner],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let pid: number | undefined;
  let prefix: string | undefined;
  try {
    let text = "";
    const decoder = new TextDecoder();
    while (!text.includes("\n")) {
      const chunk = await reader.read();
      assert(!chunk.done, "the owner exited before it printed its runner");
      text += decoder.decode(chunk.value, { stream: true });
    }
    const info = JSON.parse(text.slice(0, text.indexOf("\n")));
    pid = info.pid as number;
    prefix = info.prefix as string;
    assert(info.sent >= 4, `only ${info.sent} messages went in`);
    assert(alive(pid), "the runner is alive before the kill");
    const killedAt = performance.now();
    child.kill("SIGKILL");
    await child.status;
    const gone = await waitUntil(() => !alive(pid!), 5000);
    const took = performance.now() - killedAt;
    assert(gone, "the runner still runs 5 s after its owner's kill -9");
    // The runner's exit watchdog fires at 1.8 s: well under it means the
    // blocked publish gave up by itself.
    assert(
      took < 1200,
      `the runner exited ${took.toFixed(0)} ms after the kill`,
    );
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await reader.cancel().catch(() => {});
    if (pid !== undefined && alive(pid)) Deno.kill(pid, "SIGKILL");
    if (pid !== undefined) await waitUntil(() => !alive(pid!), 5000);
    if (prefix) sweepStaleIsolations({ prefixes: [prefix] });
  }
});

Deno.test("close() of a session whose node is stuck publishing to an unread output is quick and clean", async () => {
  await using ex = executor({
    channelCapacity: 2,
    publishTimeoutSecs: 30,
    cleanupGracePeriodSecs: 10,
  });
  const session = await ex.createSession(single("echo"), {
    ...modules,
    printLogs: false,
  });
  await session.initialize();
  // Output capacity 2, never read: the third echo waits for space.
  for (let i = 0; i < 4; i++) {
    await session.send("in", binary(new Uint8Array(64)));
  }
  await new Promise((r) => setTimeout(r, 300));
  const started = performance.now();
  const printed: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => printed.push(args.join(" "));
  try {
    await session.close();
  } finally {
    console.error = original;
  }
  const took = performance.now() - started;
  // The dropped output is no node error: nothing is printed.
  assert(
    !printed.some((l) => l.includes("Unhandled")),
    printed.join("\n"),
  );
  // Before the fix the runner waited for space until SIGKILL (the grace).
  assert(took < 2000, `close() took ${took.toFixed(0)} ms`);
  assertEquals(session.status()[0].exit, { code: 0, signal: null });
});
