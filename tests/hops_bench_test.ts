import { assert, assertEquals } from "./support/assert.ts";

const root = new URL("..", import.meta.url).pathname;

Deno.test("bench/hops_report.ts --quick --no-dora --json measures every path and size", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "bench/hops_report.ts",
      "--quick",
      "--no-dora",
      "--json",
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, `bench:hops failed:\n${stderr}`);
  const rows = new TextDecoder().decode(out.stdout).trim().split("\n").map(
    (line) => JSON.parse(line),
  );
  const paths = [
    "raw_d2p",
    "raw_p2d",
    "session_d2p",
    "session_p2p",
    "session_p2d",
    "chain4",
  ];
  const sizes = [64, 64 << 10, 1 << 20, 16 << 20, 64 << 20];
  assertEquals(rows.length, paths.length * sizes.length);
  for (const path of paths) {
    for (const bytes of sizes) {
      const r = rows.find((x) => x.path === path && x.bytes === bytes);
      assert(r, `no row for ${path} at ${bytes} bytes`);
      assertEquals(Object.keys(r).sort(), [
        "bench",
        "bytes",
        "p50_us",
        "p95_us",
        "p99_us",
        "path",
      ]);
      assertEquals(r.bench, "hops");
      assert(
        r.p50_us > 0 && r.p50_us <= r.p95_us && r.p95_us <= r.p99_us,
        JSON.stringify(r),
      );
    }
  }
});
