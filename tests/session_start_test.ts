/**
 * Session start must not block the event loop: creating a channel's
 * iceoryx2 services writes and fsyncs their static config files (under the
 * root in /tmp), milliseconds each on a busy disk. Found by the reliability
 * suite (`load_concurrent`: 10 sessions starting at once stalled a 10 ms
 * timer for 300-700 ms, the main thread in fsync under
 * `Session#openChannels`), and the first session of a program asked Python
 * where the native library is with a synchronous process run (~240 ms
 * blocked under load).
 */
import { assert } from "./support/assert.ts";
import { executor, modules, python, root } from "./support/sessions.ts";
import { Pipeline } from "../pipeline/mod.ts";

/** The main thread's run-queue wait so far, ms (0 where unreadable). */
function runqueueMs(): number {
  try {
    return Number(
      Deno.readTextFileSync(`/proc/${Deno.pid}/task/${Deno.pid}/schedstat`)
        .split(" ")[1],
    ) / 1e6;
  } catch {
    return 0;
  }
}

Deno.test("a session of 24 chained nodes starts without blocking a 5 ms timer on its 25 channels", async () => {
  // 25 channels (75 services) but only two Deno ports: what is left of the
  // start's synchronous work is small.
  let pipeline = new Pipeline();
  const nodes = 24;
  for (let i = 1; i <= nodes; i++) pipeline = pipeline.addNode("echo", `e${i}`);
  pipeline = pipeline.addInput("in", "e1", "in");
  for (let i = 1; i < nodes; i++) {
    pipeline = pipeline.connect(`e${i}`, "out", `e${i + 1}`, "in");
  }
  pipeline = pipeline.addOutput("out", `e${nodes}`, "out");
  await using ex = executor();
  // Warm up: the type listing and the fork server are not what is measured.
  await (await ex.createSession(pipeline, modules)).close();
  let worst = 0;
  let last = performance.now();
  let lastWait = runqueueMs();
  const timer = setInterval(() => {
    const now = performance.now();
    const wait = runqueueMs();
    // Lateness the main thread spent neither waiting for a CPU (a busy
    // machine) nor idle: blocked or running in the event loop.
    worst = Math.max(worst, now - last - 5 - (wait - lastWait));
    last = now;
    lastWait = wait;
  }, 5);
  // createSession resolves once the channels exist and the runners are
  // forked (before their initialize()).
  const session = await ex.createSession(pipeline, modules).finally(() =>
    clearInterval(timer)
  );
  await session.close();
  assert(
    worst < 100,
    `the event loop was blocked ${worst.toFixed(0)} ms during session start`,
  );
});

/** A fresh program's first session: the native library is not loaded yet. */
const FIRST_SESSION = `
import { MultiprocessExecutor } from "${root}control/executor.ts";
import { Pipeline } from "${root}pipeline/mod.ts";
const runqueueMs = () => Number(Deno.readTextFileSync(
  \`/proc/\${Deno.pid}/task/\${Deno.pid}/schedstat\`).split(" ")[1]) / 1e6;
let worst = 0, last = performance.now(), lastWait = runqueueMs();
const timer = setInterval(() => {
  const now = performance.now(), wait = runqueueMs();
  worst = Math.max(worst, now - last - 5 - (wait - lastWait));
  last = now; lastWait = wait;
}, 5);
const ex = new MultiprocessExecutor({ python: { executable: Deno.args[0] } });
const pipeline = new Pipeline().addNode("echo", "e").addInput("in", "e", "in")
  .addOutput("out", "e", "out");
const session = await ex.createSession(pipeline, {
  modules: ["demo_nodes"], modulePaths: [Deno.args[1]],
});
clearInterval(timer);
await session.close();
await ex.close();
console.log(worst.toFixed(1));
`;

Deno.test("a program's first session does not block the event loop while Python is asked where the native library is", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(script, FIRST_SESSION);
    const blocked: number[] = [];
    // Up to three runs: one clean run is enough, a slow moment is not a
    // failure. Measured: 9-17 ms, 48-133 ms with the synchronous lookup.
    for (let i = 0; i < 3 && !blocked.some((b) => b < 35); i++) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, python, `${root}examples/nodes`],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      assert(out.success, "the first-session program failed");
      blocked.push(Number(new TextDecoder().decode(out.stdout).trim()));
    }
    assert(
      blocked.some((b) => b < 35),
      `the event loop was blocked ${
        blocked.join(", ")
      } ms during a first session`,
    );
  } finally {
    await Deno.remove(script);
  }
});
