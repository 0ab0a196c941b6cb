import { assert, assertEquals } from "./support/assert.ts";
import { canMakeNetns, namespaceNames } from "./support/netns.ts";

const root = new URL("..", import.meta.url).pathname;

Deno.test({
  name:
    "bench/hosts_report.ts --quick --json measures every path and size, and leaves no namespace",
  ignore: !canMakeNetns(),
  async fn() {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "bench/hosts_report.ts", "--quick", "--json"],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
      // About 25 s once .cache/zenoh-venv exists (the session_hosts session
      // and its agent take ~10 s to start and stop); its first install (PyPI)
      // takes a minute more.
      signal: AbortSignal.timeout(240_000),
    }).spawn();
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, `bench:hosts failed:\n${stderr}`);
    const rows = new TextDecoder().decode(out.stdout).trim().split("\n").map(
      (line) => JSON.parse(line),
    );
    const paths = ["zenoh_netns", "zenoh_lo", "session_p2p", "session_hosts"];
    const sizes = [1 << 10, 64 << 10, 1 << 20, 16 << 20];
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
          "path",
        ]);
        assertEquals(r.bench, "hosts");
        assert(r.p50_us > 0 && r.p50_us <= r.p95_us, JSON.stringify(r));
      }
    }
    // 16 MiB cannot cross TCP as fast as 1 KiB: the Zenoh rows and the
    // bridged hop measure a real transfer (generous: the machine is loaded).
    for (const path of ["zenoh_netns", "zenoh_lo", "session_hosts"]) {
      const small = rows.find((x) => x.path === path && x.bytes === 1 << 10);
      const big = rows.find((x) => x.path === path && x.bytes === 16 << 20);
      assert(
        big.p50_us > small.p50_us,
        `${path}: ${JSON.stringify([small, big])}`,
      );
    }
    const left = (await namespaceNames()).filter((n) =>
      n.startsWith(`rmp${child.pid}h`)
    );
    assertEquals(left, []);
  },
});
