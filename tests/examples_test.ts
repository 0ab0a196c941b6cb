import { assert } from "./support/assert.ts";

const root = new URL("..", import.meta.url).pathname;

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: root,
    signal: AbortSignal.timeout(120_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert(out.success, `${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

Deno.test("examples/concurrent_branches/main.ts (deno task demo:concurrent) runs", async () => {
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    "examples/concurrent_branches/main.ts",
  ]);
  assert(
    out.includes(
      "tts streamed: hello | from | the | zero | copy | data | plane",
    ),
    out,
  );
  assert(/ready \(every model loaded\) after \d+ ms/.test(out), out);
});

Deno.test("examples/python_client/main.py (deno task example:progress) runs", async () => {
  const out = await run(`${root}.venv/bin/python`, [
    "examples/python_client/main.py",
  ]);
  assert(out.includes("reply: 'hello from Python over shared memory'"), out);
  assert(out.includes("loaded 5/5 shards"), out);
});

Deno.test("examples/two_hosts/main.ts (deno task demo:hosts) runs", async () => {
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    "examples/two_hosts/main.ts",
  ]);
  assert(out.includes("tts streamed: hello | from | the | other | host"), out);
  assert(out.includes("node asr: host gpu"), out);
  assert(/asr +loading +100% loaded 4\/4 shards/.test(out), out);
});
