/**
 * Deno permissions: a real pipeline under the flags the README documents,
 * and, for each permission the runtime needs, the error a program gets
 * without it: a MissingPermissionError that names the flag (never "does not
 * exist" or a raw NotCapable).
 */
import { assert, assertEquals } from "./support/assert.ts";
import {
  type Isolation,
  leftovers,
  removeIsolation,
} from "../data/isolation.ts";

const root = new URL("..", import.meta.url).pathname;
const program = `${root}tests/fixtures/permission_program.ts`;
const python = `${root}.venv/bin/python`;

interface Outcome {
  ok: boolean;
  name?: string;
  message?: string;
  got?: string;
  prefix?: string;
  root?: string;
  pids?: number[];
  code: number;
  stderr: string;
  pid: number;
}

/** Runs the fixture under exactly `flags` (bounded) and parses its last line. */
async function run(flags: string[], args: string[]): Promise<Outcome> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...flags, program, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, 60_000);
  const output = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(output.stdout).trim();
  const stderr = new TextDecoder().decode(output.stderr);
  const last = stdout.split("\n").at(-1) ?? "";
  assert(last.startsWith("{"), `no result line; stdout: ${stdout}; ${stderr}`);
  return { ...JSON.parse(last), code: output.code, stderr, pid: child.pid };
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.split(") ")[1].startsWith("Z");
  } catch {
    return false;
  }
}

/** The program's isolations still under /tmp/rmp (its prefixes start with its pid). */
function isolationsOf(pid: number): string[] {
  try {
    return [...Deno.readDirSync("/tmp/rmp")].map((e) => e.name).filter((n) =>
      n.startsWith(`rmp${pid}x`)
    );
  } catch {
    return [];
  }
}

function expectMissing(outcome: Outcome, flag: string, starts: string): void {
  const why = JSON.stringify(outcome);
  assertEquals(outcome.ok, false, why);
  assertEquals(outcome.name, "MissingPermissionError", why);
  assert(outcome.message!.startsWith(starts), why);
  assert(outcome.message!.includes(`run Deno with ${flag})`), why);
}

const ALL_BUT_A = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-run",
  "--allow-ffi",
  "--allow-env",
];

Deno.test("a real pipeline runs under -A, the narrowest flags that work, and leaves nothing", async () => {
  const outcome = await run(["-A"], ["session", python]);
  assertEquals(outcome.ok, true, JSON.stringify(outcome));
  assertEquals(outcome.got, "hello");
  const iso: Isolation = { prefix: outcome.prefix!, root: outcome.root! };
  try {
    assertEquals(leftovers(iso), []);
    for (const pid of outcome.pids!) assert(!alive(pid), `${pid} is gone`);
  } finally {
    removeIsolation(iso);
  }
});

Deno.test("with every permission but -A, createSession names -A before it touches shared memory", async () => {
  // --deny-write on /tmp/rmp: code without the check (69a4b0d) would go on to
  // sweep "stale" isolations, and without -A it takes every other program's
  // for stale; denied, it cannot delete them.
  const outcome = await run(
    [...ALL_BUT_A, "--deny-write=/tmp/rmp"],
    ["session", python],
  );
  expectMissing(outcome, "-A", "Cannot create a session");
  assert(outcome.message!.includes('"/dev/shm"'), outcome.message);
  assertEquals(isolationsOf(outcome.pid), [], "no isolation was created");
});

Deno.test("without --allow-read the error names --allow-read, not a missing file", async () => {
  const outcome = await run(
    ALL_BUT_A.filter((f) => f !== "--allow-read"),
    ["session", python],
  );
  expectMissing(
    outcome,
    "--allow-read",
    `Cannot check the Python executable "${python}"`,
  );
  assert(!outcome.message!.includes("does not exist"), outcome.message);
});

Deno.test("without --allow-run the error names --allow-run", async () => {
  const outcome = await run(
    ALL_BUT_A.filter((f) => f !== "--allow-run"),
    ["session", python],
  );
  expectMissing(
    outcome,
    "--allow-run",
    `Cannot run the Python runner "${python}"`,
  );
});

Deno.test("config and pipeline files: a missing read or write permission is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rmp-permissions-" });
  try {
    const config = `${dir}/runtime.toml`;
    const pipeline = `${dir}/pipeline.json`;
    await Deno.writeTextFile(config, "[multiprocess]\n");
    await Deno.writeTextFile(
      pipeline,
      JSON.stringify({ version: 1, nodes: [{ id: "n", type: "echo" }] }),
    );
    expectMissing(
      await run([], ["config", config]),
      "--allow-read",
      `Cannot read the config file "${config}"`,
    );
    expectMissing(
      await run([], ["load", pipeline]),
      "--allow-read",
      `Cannot read the pipeline file "${pipeline}"`,
    );
    expectMissing(
      await run([], ["save", `${dir}/saved.json`]),
      "--allow-write",
      `Cannot write the pipeline file "${dir}/saved.json"`,
    );
    assertEquals((await run(["--allow-read"], ["config", config])).ok, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the native library: --allow-read and --allow-ffi are named; --allow-env is optional", async () => {
  const library = `${root}ffi/target/release/librmp_iceoryx2.so`;
  expectMissing(
    await run(["--allow-ffi"], ["native"]),
    "--allow-read",
    `Cannot check the native iceoryx2 library "${library}"`,
  );
  expectMissing(
    await run(["--allow-read"], ["native"]),
    "--allow-ffi",
    `Cannot load the native iceoryx2 library "${library}"`,
  );
  // Without --allow-env, RMP_ICEORYX2_LIB counts as unset.
  const outcome = await run(["--allow-read", "--allow-ffi"], ["native"]);
  assertEquals(outcome.ok, true, JSON.stringify(outcome));
});

Deno.test("a Unix socket needs --allow-net, and the error says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rmp-permissions-" });
  try {
    const socket = `${dir}/control.sock`;
    expectMissing(
      await run(["--allow-read", "--allow-write"], ["listen", socket]),
      "--allow-net",
      `Cannot listen on the control socket "${socket}"`,
    );
    const outcome = await run(
      ["--allow-read", "--allow-write", "--allow-net"],
      ["listen", socket],
    );
    assertEquals(outcome.ok, true, JSON.stringify(outcome));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
