/**
 * Isolation ownership (issue 7, defect 9): an isolation is live while some
 * process holds a shared flock on its lock file; sweepers remove it only
 * under the exclusive lock. Real processes throughout; every sweep here is
 * scoped to the test's own prefixes, so it cannot touch other sessions.
 */
import { assert, assertEquals } from "./support/assert.ts";
import {
  holdIsolation,
  isolationLockPath,
  leftovers,
  newIsolation,
  removeIsolation,
  sweepStaleIsolations,
} from "../data/isolation.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import { binary } from "../data/runtime_data/mod.ts";
import { alive, canUnsharePid, existing, Owner } from "./support/owner.ts";

const python = new URL("../.venv/bin/python", import.meta.url).pathname;
const decoder = new TextDecoder();

// In PID namespaces, owners are PID 2, which sweepers of versions before lock
// files (still run by other checkouts on a shared machine) take as alive: so
// only the sweeps of these tests remove their files.
const pidNamespace = canUnsharePid();
const startOwner = (mode: "context" | "session" | "spawned-session") =>
  Owner.start(mode, { pidNamespace });

/** Runs Python code (with `args` as sys.argv[1:]) and returns its stdout. */
async function py(code: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(python, {
    args: ["-c", code, ...args],
    stderr: "inherit",
  }).output();
  assert(out.success, `python exited with ${out.code}`);
  return decoder.decode(out.stdout).trim();
}

/** Python's sweeper over `prefixes`; returns how many it removed. */
/**
 * Sweeps `iso` until nothing of it is left (bounded: 2 s). Another program's
 * sweep on this machine may take the files first: what counts is that they go.
 */
async function sweptAway(
  iso: { prefix: string; root: string },
): Promise<boolean> {
  const deadline = Date.now() + 2000;
  while (true) {
    sweepStaleIsolations({ prefixes: [iso.prefix] });
    if (leftovers(iso).length === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function pySweep(prefixes: string[]): Promise<number> {
  return Number(
    await py(
      "import sys; from remotemedia_multiprocess._iox import sweep_stale; " +
        "print(sweep_stale(prefixes=sys.argv[1:]))",
      ...prefixes,
    ),
  );
}

/** A Python process that holds a lock on `path` (mode "sh" or "ex") until
 * its stdin ends; resolves once it holds it. */
async function pyHolder(
  path: string,
  mode: "sh" | "ex" | "hold_isolation",
): Promise<{ stop: () => Promise<void>; pid: number }> {
  const child = new Deno.Command(python, {
    args: [
      "-c",
      `import fcntl, os, sys
from remotemedia_multiprocess._iox import hold_isolation
mode, path = sys.argv[1:]
if mode == "hold_isolation":
    assert hold_isolation(path[: -len(".lock")] + "/") is not None
else:
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH if mode == "sh" else fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()`,
      mode,
      path,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assertEquals(decoder.decode(value).trim(), "held");
  reader.releaseLock();
  return {
    pid: child.pid,
    stop: async () => {
      await child.stdin.close();
      await child.status;
      await child.stdout.cancel();
    },
  };
}

Deno.test("Deno's FsFile locks and Python's fcntl.flock exclude each other (both flock(2))", async () => {
  const iso = newIsolation(); // holds a shared lock with Deno.FsFile
  const path = isolationLockPath(iso);
  const tryPy = (mode: string) =>
    py(
      `import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.flock(fd, fcntl.${mode} | fcntl.LOCK_NB)
    print("got")
except BlockingIOError:
    print("busy")`,
      path,
    );
  try {
    assertEquals(await tryPy("LOCK_EX"), "busy");
    assertEquals(await tryPy("LOCK_SH"), "got");
    const holder = await pyHolder(path, "sh");
    using second = Deno.openSync(path, { read: true });
    assertEquals(second.tryLockSync(true), false, "Python's shared lock");
    await holder.stop();
    // The exclusive half on a file of its own: an isolation lock file that
    // nobody holds may be swept by any other program on this machine.
    const own = Deno.makeTempFileSync({ prefix: "rmp-flock-" });
    try {
      const exclusive = await pyHolder(own, "ex");
      using third = Deno.openSync(own, { read: true });
      assertEquals(third.tryLockSync(false), false, "Python's exclusive lock");
      await exclusive.stop();
      assertEquals(third.tryLockSync(true), true);
    } finally {
      Deno.removeSync(own);
    }
  } finally {
    iso.lock.release();
    removeIsolation(iso);
  }
});

Deno.test("a new isolation is locked before its root exists, and its lock file is the one it holds", () => {
  const iso = newIsolation();
  try {
    assert(iso.lock.held);
    assertEquals(
      iso.lock.path,
      `/tmp/rmp/${iso.prefix}.lock`,
    );
    assert(Deno.statSync(iso.root).isDirectory);
    // A sweeper cannot take it, and this process's own sweeps leave it too.
    using other = Deno.openSync(iso.lock.path, { read: true });
    assertEquals(other.tryLockSync(true), false);
    assertEquals(sweepStaleIsolations({ prefixes: [iso.prefix] }), 0);
    assertEquals(existing([iso.lock.path, iso.root]).length, 2);
  } finally {
    assert(removeIsolation(iso));
  }
  assertEquals(leftovers(iso), []);
});

Deno.test("a live owner's files survive Deno's and Python's sweeps; after its kill -9 a sweep removes everything", async () => {
  const owner = await startOwner("context");
  try {
    const { prefix } = owner.info;
    const files = leftovers(owner.info);
    assert(files.some((f) => f.startsWith(`/dev/shm/${prefix}`)));
    assert(files.includes(`/tmp/rmp/${prefix}.lock`), files.join());
    assertEquals(sweepStaleIsolations({ prefixes: [prefix] }), 0);
    assertEquals(await pySweep([prefix]), 0);
    assertEquals(await owner.sweep([prefix]), 0, "its own sweeper");
    assertEquals(existing(files), files);
    await owner.kill9();
    assert(await sweptAway(owner.info));
  } finally {
    await owner.close();
  }
});

Deno.test("after an owner's kill -9 Python's sweeper removes everything too", async () => {
  const owner = await startOwner("context");
  // Any session on the machine may sweep the dead owner's files first (as it
  // should): hold them with a shared lock until the Python sweeper has
  // started, then hand over.
  const guard = holdIsolation(owner.info);
  assert(guard);
  const sweeper = new Deno.Command(python, {
    args: [
      "-c",
      "import sys\nfrom remotemedia_multiprocess._iox import sweep_stale\n" +
      "print('ready', flush=True)\nsys.stdin.readline()\n" +
      "print(sweep_stale(prefixes=sys.argv[1:]), flush=True)",
      owner.info.prefix,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = sweeper.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  try {
    await owner.kill9();
    assert(leftovers(owner.info).length > 0);
    let out = "";
    while (!out.includes("ready\n")) {
      const { value, done } = await lines.read();
      assert(!done, "the sweeper exited before it was ready");
      out += value;
    }
    guard.release();
    const writer = sweeper.stdin.getWriter();
    await writer.write(new TextEncoder().encode("go\n"));
    await writer.close();
    while (out.split("\n").length < 3) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
    assert(Number(out.split("\n")[1]) > 0, out);
    assertEquals(leftovers(owner.info), []);
  } finally {
    guard.release();
    await sweeper.status;
    await owner.close();
  }
});

Deno.test("the creation race: a lock file swept before its creator locked it is noticed, and no new isolation is lost to a busy sweeper", async () => {
  // The creator's first step, then a sweep before its lock: the sweeper
  // may take the file (nobody holds it) and unlinks it last.
  const hex = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
  const prefix = `rmp${Deno.pid}x${hex.padStart(8, "0")}_`;
  const path = `/tmp/rmp/${prefix}.lock`;
  using early = Deno.openSync(path, {
    read: true,
    write: true,
    createNew: true,
  });
  assertEquals(sweepStaleIsolations({ prefixes: [prefix] }), 1);
  assertEquals(existing([path]), []);
  // The creator's lock still succeeds, on an unlinked file: hence the
  // check that the path still names the locked file.
  assert(early.tryLockSync(false));
  assertEquals(holdIsolation({ prefix, root: `/tmp/rmp/${prefix}/` }), null);

  // A Python sweeper sweeps this process's prefixes in a loop while we
  // create isolations: every one we get must be intact and locked.
  const sweeper = new Deno.Command(python, {
    args: [
      "-c",
      `import os, sys, time
from remotemedia_multiprocess._iox import sweep_stale
tag, end = f"rmp{sys.argv[1]}x", time.monotonic() + float(sys.argv[2])
sweeps = 0
print("go", flush=True)
while time.monotonic() < end:
    names = [n for n in os.listdir("/tmp/rmp") if n.startswith(tag)]
    sweep_stale(prefixes={n.removesuffix(".lock") for n in names})
    sweeps += 1
print(sweeps)`,
      String(Deno.pid),
      "1.5",
    ],
    stdout: "piped",
  }).spawn();
  const reader = sweeper.stdout.getReader();
  assertEquals(decoder.decode((await reader.read()).value).trim(), "go");
  const made = [];
  const until = Date.now() + 1000;
  while (Date.now() < until) made.push(newIsolation());
  const rest = [];
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    rest.push(decoder.decode(r.value));
  }
  await sweeper.status;
  const sweeps = Number(rest.join("").trim());
  assert(sweeps > 10, `the sweeper ran ${sweeps} times`);
  try {
    for (const iso of made) {
      const held = Deno.openSync(iso.lock.path, { read: true });
      const locked = !held.tryLockSync(true);
      held.close();
      assert(locked, `${iso.prefix} is still locked`);
      assertEquals(existing([iso.lock.path, iso.root]).length, 2, iso.prefix);
    }
  } finally {
    for (const iso of made) removeIsolation(iso);
  }
});

Deno.test("a runner's shared lock keeps the session's files after the owner's kill -9, until the runner exits", async () => {
  // A spawned runner: a forked one dies with its owner (the fork server's
  // PR_SET_PDEATHSIG), so it could not outlive the owner to be tested here.
  const owner = await startOwner("spawned-session");
  const runner = owner.info.runnerPid!;
  const { prefix } = owner.info;
  try {
    // The runner holds its own flock on the lock file.
    const ino = Deno.statSync(`/tmp/rmp/${prefix}.lock`).ino;
    const locks = Deno.readTextFileSync("/proc/locks").split("\n");
    assert(
      locks.some((l) =>
        /FLOCK\s+ADVISORY\s+READ/.test(l) &&
        l.includes(` ${runner} `) && l.endsWith(`:${ino} 0 EOF`)
      ),
      `no shared flock of runner ${runner} on inode ${ino}`,
    );
    // Stopped, the runner cannot exit: only its lock can keep the files.
    Deno.kill(runner, "SIGSTOP");
    await owner.kill9();
    const files = leftovers(owner.info);
    assert(files.some((f) => f.startsWith(`/dev/shm/${prefix}`)));
    assertEquals(sweepStaleIsolations({ prefixes: [prefix] }), 0);
    assertEquals(await pySweep([prefix]), 0);
    assertEquals(existing(files), files);
    Deno.kill(runner, "SIGCONT");
    // It sees the control socket end and exits within its 2 s bound.
    const deadline = Date.now() + 10_000;
    while (alive(runner) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(!alive(runner), "the runner exited");
    // No one reaps it in its namespace: a zombie, whose other threads (and
    // so its files and lock) may take a moment longer to go.
    // (Another program's sweep on this machine may take them first.)
    while (
      leftovers(owner.info).length > 0 &&
      sweepStaleIsolations({ prefixes: [prefix] }) === 0
    ) {
      assert(Date.now() < deadline, "the runner's lock went");
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(leftovers(owner.info), []);
  } finally {
    try {
      Deno.kill(runner, "SIGCONT");
    } catch { /* gone */ }
    await owner.close();
    sweepStaleIsolations({ prefixes: [prefix] });
  }
});

Deno.test("an owner's children do not inherit its lock: files go once the owner is killed, though a child lives on", async () => {
  const owner = await startOwner("context");
  let child = 0;
  try {
    child = (await owner.command("spawn")).pid;
    const fds = [...Deno.readDirSync(`/proc/${child}/fd`)].map((e) => {
      try {
        return Deno.readLinkSync(`/proc/${child}/fd/${e.name}`);
      } catch {
        return "";
      }
    });
    assert(!fds.some((f) => f.endsWith(".lock")), fds.join());
    await owner.kill9();
    assert(alive(child), "the child outlived its owner");
    assert(await sweptAway(owner.info));
    assert(alive(child), "the child still runs");
  } finally {
    await owner.close(); // ends its namespace, the child too
    if (child && alive(child)) Deno.kill(child, "SIGKILL");
  }
});

Deno.test("closing a context while another process holds the lock leaves the files to a later sweep", async () => {
  const ctx = await ChannelContext.create();
  const iso = ctx.isolation;
  const channel = ctx.channel("x");
  using _sub = channel.subscriber();
  await channel.publisher().publish(binary(new Uint8Array(4)));
  const holder = await pyHolder(isolationLockPath(iso), "hold_isolation");
  await ctx.close();
  const files = leftovers(iso);
  assert(files.includes(isolationLockPath(iso)), files.join());
  assertEquals(sweepStaleIsolations({ prefixes: [iso.prefix] }), 0);
  await holder.stop();
  assert(await sweptAway(iso));
});

Deno.test("removeIsolation of a plain isolation leaves a live one alone", async () => {
  const owner = await startOwner("context");
  try {
    const files = leftovers(owner.info);
    const plain = { prefix: owner.info.prefix, root: owner.info.root };
    assertEquals(removeIsolation(plain), false);
    assertEquals(existing(files), files);
    await owner.kill9();
    assertEquals(removeIsolation(plain), true);
    assertEquals(leftovers(plain), []);
  } finally {
    await owner.close();
  }
});

/** True when we may mount private tmpfs over /dev/shm and /tmp/rmp. */
function canPrivateMounts(): boolean {
  try {
    return new Deno.Command("unshare", {
      args: ["--mount", "sh", "-c", "mount -t tmpfs none /dev/shm"],
      stdout: "null",
      stderr: "null",
    }).outputSync().code === 0;
  } catch {
    return false;
  }
}

const privateMounts = canPrivateMounts();
for (const sweeper of ["Deno", "Python"] as const) {
  // Files without a lock file whose PID is dead are what the sweepers before
  // lock files (still run by other checkouts here) remove at once, so this
  // runs where only it can see them: private /dev/shm and /tmp/rmp.
  Deno.test({
    name:
      `${sweeper}'s sweeper: files without a lock file go only when old and their PID is gone`,
    ignore: !privateMounts,
    async fn() {
      const script =
        new URL("./support/unlocked_check.ts", import.meta.url).pathname;
      const out = await new Deno.Command("unshare", {
        args: [
          "--mount",
          "sh",
          "-c",
          'mount -t tmpfs none /dev/shm && mkdir -p /tmp/rmp && mount -t tmpfs none /tmp/rmp && exec "$@"',
          "sh",
          Deno.execPath(),
          "run",
          "-A",
          script,
          sweeper,
        ],
        stderr: "inherit",
      }).output();
      assert(out.success, `unlocked_check exited with ${out.code}`);
      const result = JSON.parse(decoder.decode(out.stdout));
      assertEquals(result.young, 0, "young: kept");
      assertEquals(result.old, 2, "the stale shm file and root");
      assertEquals(result.left, result.expected);
    },
  });
}
