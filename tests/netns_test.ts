/**
 * The network-namespace harness of the multi-host tests (tests/support/netns.ts):
 * two namespaces talk TCP over their veth, a link taken down stops them, and
 * nothing is left after close nor after the owner is killed -9.
 */
import { assert, assertEquals } from "./support/assert.ts";
import {
  canMakeNetns,
  createNetwork,
  LOCK_DIR,
  namespaceNames,
  NetnsError,
  PREFIX,
  rootLinkNames,
  sweepStale,
} from "./support/netns.ts";

const ignore = !canMakeNetns();
const root = new URL("..", import.meta.url).pathname;

/** A TCP echo server: prints "ready" once listening, echoes each connection. */
const SERVER = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print("ready", flush=True)
while True:
    c, _ = s.accept()
    with c:
        c.sendall(c.recv(1024))
`;
/** Connects (bounded), sends argv[3], prints the echo; exit 1 on failure. */
const CLIENT = `
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    c.settimeout(2)
    c.sendall(sys.argv[3].encode())
    print(c.recv(1024).decode())
except OSError as e:
    print(f"failed: {e}", file=sys.stderr)
    sys.exit(1)
`;

async function readyLine(child: Deno.ChildProcess): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => reader.cancel(), 15_000);
  const { value } = await reader.read();
  clearTimeout(timer);
  reader.releaseLock();
  assert(value?.startsWith("ready"), `echo server did not start: ${value}`);
}

async function ours(): Promise<{ ns: string[]; links: string[] }> {
  const mine = (n: string) => n.startsWith(PREFIX);
  return {
    ns: (await namespaceNames()).filter(mine),
    links: (await rootLinkNames()).filter(mine),
  };
}

Deno.test({
  name:
    "netns: two hosts echo over TCP on their veth; link down stops them, up restores; close leaves nothing",
  ignore,
  async fn() {
    const net = await createNetwork(2);
    try {
      assertEquals(net.links.length, 1);
      const server = net.address(0, 1);
      assertEquals(server, "10.231.0.2");
      // The addresses exist inside the namespaces only.
      assert(
        !(await new Deno.Command("ip", { args: ["-o", "addr"] }).output()
          .then((o) => new TextDecoder().decode(o.stdout))).includes("10.231."),
      );
      const echo = net.spawn(1, ["python3", "-c", SERVER, server, "7447"], {
        stdout: "piped",
        stderr: "inherit",
      });
      await readyLine(echo);
      const client = ["python3", "-c", CLIENT, server, "7447"];
      const ok = await net.exec(0, [...client, "hello"]);
      assert(ok.success, ok.stderr);
      assertEquals(ok.stdout.trim(), "hello");

      await net.linkDown(0, 1);
      const down = await net.exec(0, [...client, "lost"]);
      assert(
        !down.success,
        `reached the server with the link down: ${down.stdout}`,
      );
      assert(down.stderr.includes("failed"), down.stderr);

      await net.linkUp(0, 1);
      // The veth needs a moment to get its carrier back: retry, bounded.
      let again = down;
      for (let i = 0; i < 20 && !again.success; i++) {
        await new Promise((r) => setTimeout(r, 250));
        again = await net.exec(0, [...client, "back"]);
      }
      assert(again.success, again.stderr);
      assertEquals(again.stdout.trim(), "back");
      assertEquals((await ours()).ns.length, 2);
    } finally {
      await net.close(); // kills the echo server too
    }
    assertEquals(await ours(), { ns: [], links: [] });
  },
});

Deno.test({
  name: "netns: three hosts are linked pairwise, each pair on its own subnet",
  ignore,
  async fn() {
    await using net = await createNetwork(3);
    assertEquals(net.links.length, 3);
    for (const [a, b] of [[0, 1], [0, 2], [1, 2]]) {
      const l = net.link(a, b);
      const out = await net.exec(a, ["ip", "-o", "addr", "show", "dev", l.ifA]);
      assert(out.stdout.includes(`${net.address(b, a)}/24`), out.stdout);
      assertEquals(net.address(a, b), `10.231.${l.index}.2`);
    }
  },
});

Deno.test({
  name:
    "netns: bad input is a NetnsError; an owner cleans up on SIGTERM; its network after kill -9 is swept",
  ignore,
  async fn() {
    for (const n of [1, 9, 2.5]) {
      let err: unknown;
      await createNetwork(n).catch((e) => (err = e));
      assert(err instanceof NetnsError, String(err));
      assert(/^A network needs 2 to 8 hosts/.test((err as Error).message));
    }
    // An owner that makes a network and is killed before it can clean up.
    const owner = async (signal: Deno.Signal) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { createNetwork, PREFIX } from "${root}tests/support/netns.ts";
           await createNetwork(2, { sweep: false });
           console.log(PREFIX);
           await new Promise((r) => setTimeout(r, 60_000));`,
        ],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const { value } = await reader.read();
      child.kill(signal);
      const status = await child.status;
      clearTimeout(timer);
      reader.releaseLock();
      return { prefix: value!.trim(), status };
    };
    const left = async (prefix: string) => ({
      ns: (await namespaceNames()).filter((n) => n.startsWith(prefix)),
      links: (await rootLinkNames()).filter((n) => n.startsWith(prefix)),
    });
    // SIGTERM (a timeout's kill): the owner cleans up itself, then dies.
    const term = await owner("SIGTERM");
    assertEquals(term.status.code, 143);
    assertEquals(await left(term.prefix), { ns: [], links: [] });
    // SIGKILL: its names stay until a sweep.
    const { prefix } = await owner("SIGKILL");
    assertEquals(
      (await left(prefix)).ns.length,
      2,
      "the kill left its namespaces",
    );
    const swept = await sweepStale();
    assert(swept.namespaces.includes(`${prefix}h0`), JSON.stringify(swept));
    assertEquals(await left(prefix), { ns: [], links: [] });
  },
});

Deno.test({
  name:
    "netns: a network whose lock is held is never swept, even when the PID in its name is gone (PID namespaces)",
  ignore,
  async fn() {
    // A PID that is gone, as a process in another PID namespace would look.
    const done = new Deno.Command("true").spawn();
    await done.status;
    const id = `rmp${done.pid}`;
    const ns = `${id}h0`;
    Deno.mkdirSync(LOCK_DIR, { recursive: true });
    const lockPath = `${LOCK_DIR}/${id}.lock`;
    const lock = Deno.openSync(lockPath, { create: true, write: true });
    const run = (args: string[]) =>
      new Deno.Command("ip", { args, stderr: "null" }).output();
    try {
      lock.lockSync(true); // its "owner" lives
      assert((await run(["netns", "add", ns])).success);
      await sweepStale();
      assert((await namespaceNames()).includes(ns), "swept a locked network");
      lock.unlockSync(); // the owner died
      const swept = await sweepStale();
      assertEquals(swept.namespaces, [ns]);
      assert(!(await namespaceNames()).includes(ns));
      let gone = false;
      try {
        Deno.statSync(lockPath);
      } catch {
        gone = true;
      }
      assert(gone, "the sweep left the lock file");
    } finally {
      lock.close();
      await run(["netns", "del", ns]);
      try {
        Deno.removeSync(lockPath);
      } catch { /* swept */ }
    }
  },
});
