/**
 * `deno task bench:ipc [--json]`: round trips through a Python echo node over
 * iceoryx2 shared memory, against the same payloads over Deno.Command
 * stdin/stdout pipes to a Python process that reads the whole payload and
 * acknowledges, and the floor: a 1-byte ping-pong over a Unix stream socket.
 *
 * Note: the shared-memory round trip here sends the payload both ways (the
 * echo node returns it), which is stricter than the pipe's one-byte answer.
 */
import { binary, MultiprocessExecutor, Pipeline } from "../mod.ts";

const json = Deno.args.includes("--json");
const root = new URL("../", import.meta.url).pathname;
const python = `${root}.venv/bin/python`;
const sizes = [64, 1024, 64 << 10, 1 << 20, 10 << 20, 64 << 20];
const iterations = (size: number) =>
  size >= 10 << 20 ? 30 : size >= 1 << 20 ? 100 : 400;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const rows: Record<string, unknown>[] = [];
function row(
  transport: string,
  direction: string,
  bytes: number,
  us: number[],
) {
  const r = {
    bench: "ipc",
    transport,
    direction,
    bytes,
    p50_us: +pct(us, 50).toFixed(1),
    p95_us: +pct(us, 95).toFixed(1),
    p99_us: +pct(us, 99).toFixed(1),
  };
  rows.push(r);
  if (json) console.log(JSON.stringify(r));
}

// Floor: 1-byte ping-pong over a Unix stream socket.
{
  const path = `/tmp/rmp-floor-${Deno.pid}.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const child = new Deno.Command(python, {
    args: [`${root}bench/pipe_peer.py`, "floor", path],
  }).spawn();
  const conn = await listener.accept();
  const one = new Uint8Array([1]);
  const buf = new Uint8Array(1);
  const us: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t = performance.now();
    await conn.write(one);
    await conn.read(buf);
    if (i >= 200) us.push((performance.now() - t) * 1000);
  }
  conn.close();
  listener.close();
  await child.status;
  try {
    Deno.removeSync(path);
  } catch { /* removed by close() */ }
  row("floor", "roundtrip", 1, us);
}

// Pipe baseline.
{
  const child = new Deno.Command(python, {
    args: [`${root}bench/pipe_peer.py`, "pipe"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  for (const size of sizes) {
    const msg = new Uint8Array(8 + size);
    new DataView(msg.buffer).setBigUint64(0, BigInt(size), true);
    const us: number[] = [];
    for (let i = 0; i < iterations(size) + 5; i++) {
      const t = performance.now();
      await writer.write(msg);
      await reader.read();
      if (i >= 5) us.push((performance.now() - t) * 1000);
    }
    row("pipe", "roundtrip", size, us);
  }
  await writer.close();
  await child.status;
}

// Shared memory through a Python echo node.
{
  await using executor = new MultiprocessExecutor({
    python: { executable: python },
  });
  const pipeline = new Pipeline().addNode("echo", "e").addInput("in", "e", "in")
    .addOutput("out", "e", "out");
  await using session = await executor.createSession(pipeline, {
    modules: ["demo_nodes"],
    modulePaths: [`${root}examples/nodes`],
    printLogs: false,
  });
  await session.initialize();
  const out = session.receive("out");
  for (const size of sizes) {
    const data = binary(new Uint8Array(size - 128 > 0 ? size - 128 : 1));
    const us: number[] = [];
    for (let i = 0; i < iterations(size) + 5; i++) {
      const t = performance.now();
      await session.send("in", data);
      await out.next();
      if (i >= 5) us.push((performance.now() - t) * 1000);
    }
    row("shm", "roundtrip_echo", size, us);
  }
  await out.return();
}

if (!json) {
  console.log(
    "bytes      | shm echo p50/p95 us | pipe p50/p95 us   | pipe/shm p50 | floor p50/p95 us",
  );
  const floor = rows.find((r) => r.transport === "floor")!;
  for (const size of sizes) {
    const s = rows.find((r) => r.transport === "shm" && r.bytes === size)!;
    const p = rows.find((r) => r.transport === "pipe" && r.bytes === size)!;
    console.log(
      `${String(size).padEnd(10)} | ${
        `${s.p50_us} / ${s.p95_us}`.padEnd(19)
      } | ${`${p.p50_us} / ${p.p95_us}`.padEnd(17)} | ${
        ((p.p50_us as number) / (s.p50_us as number)).toFixed(1).padStart(12)
      }x | ${floor.p50_us} / ${floor.p95_us}`,
    );
  }
}
