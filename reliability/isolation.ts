/**
 * Scenario 6 of issue 13, permissions and isolation: a user program under
 * exactly the README's permissions (and one flag short); a session's files
 * owner-only and closed to another user; a second session or a raw context
 * guessing a live session's channel names gets none of its data; node
 * processes see a minimal environment and import node code only from the
 * configured folders. Row `isolation`, runs = checks.
 *
 * @module
 */
import {
  descendants,
  filesLeft,
  processesUsing,
  type Scenario,
  type ScenarioResult,
  sleep,
  until,
} from "./_scenario.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import type { Session } from "../control/session.ts";
import { Pipeline } from "../pipeline/mod.ts";
import { text, type TextData } from "../data/runtime_data/mod.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import { NodeModuleError } from "../errors.ts";

type Check = [
  name: string,
  run: () => Promise<string | null> | string | null,
];

const ALL_BUT_A = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-run",
  "--allow-ffi",
  "--allow-env",
];

/** Runs the fixture program with `flags`; its JSON line. */
async function program(
  root: string,
  flags: string[],
  args: string[],
): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...flags,
      `${root}reliability/fixtures/narrow_program.ts`,
      ...args,
    ],
    cwd: root,
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1);
  try {
    return JSON.parse(last ?? "");
  } catch {
    return {
      ok: false,
      name: "no output",
      message: new TextDecoder().decode(out.stderr).slice(-300),
    };
  }
}

const NOBODY_SCRIPT = `
import json, os, socket, sys
opened = []
for p in sys.argv[1:]:
    try:
        if p.endswith(".sock"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(p); s.close()
        elif os.path.isdir(p):
            os.listdir(p)
        else:
            os.close(os.open(p, os.O_RDONLY))
        opened.append(p)
    except OSError:
        pass
print(json.dumps(opened))
`;

/** One streaming session: "a-<n>" every 20 ms until stopped. */
interface Stream {
  session: Session;
  sent: number;
  got: string[];
  stop: () => Promise<void>;
}

function stream(session: Session, tag: string): Stream {
  const s: Stream = { session, sent: 0, got: [], stop: async () => {} };
  let running = true;
  const sending = (async () => {
    while (running && !session.closed) {
      await session.send("in", text(`${tag}-${s.sent++}`));
      await sleep(20);
    }
  })();
  const receiving = (async () => {
    try {
      for await (
        const x of session.receive("out", { timeoutMs: 10_000 })
      ) {
        s.got.push((x.data as TextData).text);
        if (!running && s.got.length >= s.sent) break;
      }
    } catch { /* the stop's bound, or a closed session: checked by counts */ }
  })();
  s.stop = async () => {
    running = false;
    await sending;
    await Promise.race([receiving, sleep(10_000)]);
  };
  return s;
}

/** The permissions, files, channel and environment checks. */
export const scenario: Scenario = async (options) => {
  const { root, python, log } = options;
  const prefixes = new Set<string>();
  await using executor = new MultiprocessExecutor({
    python: { executable: python, env: { GIVEN_BY_CONFIG: "yes" } },
    initTimeoutSecs: 30,
  });
  const nodes = {
    modules: ["bad_nodes"],
    modulePaths: [`${root}reliability/nodes`],
    printLogs: false,
  };
  const echo = (): Pipeline =>
    new Pipeline().addNode("bad_echo", "n").addInput("in", "n", "in")
      .addOutput("out", "n", "out");
  const open = async (p: Pipeline): Promise<Session> => {
    const s = await executor.createSession(p, nodes);
    prefixes.add(s.isolation.prefix);
    await s.initialize();
    return s;
  };

  const tmp = await Deno.makeTempDir({ prefix: "rmp_isolation_" });
  const config = `${tmp}/runtime.toml`;
  await Deno.writeTextFile(
    config,
    `[multiprocess.python]\nexecutable = "${python}"\n`,
  );
  const a = await open(echo());
  const streamA = stream(a, "a");
  const checks: Check[] = [
    ["a session runs under -A (the README's narrowest set)", async () => {
      const r = await program(root, ["-A"], ["session", python]);
      return r.ok === true && r.got === "hello" ? null : JSON.stringify(r);
    }],
    ["every permission but -A: MissingPermissionError naming -A", async () => {
      const r = await program(root, ALL_BUT_A, ["session", python]);
      return r.ok === false && r.name === "MissingPermissionError" &&
          String(r.message).includes("run Deno with -A")
        ? null
        : JSON.stringify(r);
    }],
    ["a config file loads with --allow-read only", async () => {
      const r = await program(root, ["--allow-read"], ["config", config]);
      return r.ok === true && r.python === python ? null : JSON.stringify(r);
    }],
    ["a config file without --allow-read names --allow-read", async () => {
      const r = await program(root, [], ["config", config]);
      return r.ok === false && r.name === "MissingPermissionError" &&
          r.flag === "--allow-read"
        ? null
        : JSON.stringify(r);
    }],
    ["the root, lock file and every shm file are owner-only", () => {
      const files = sessionFiles(a);
      const bad = files.filter((f) => {
        try {
          return (Deno.statSync(f).mode! & 0o077) !== 0;
        } catch {
          return false; // removed meanwhile (a released sample's segment)
        }
      }).map((f) => `${f} ${(Deno.statSync(f).mode! & 0o777).toString(8)}`);
      return files.length < 4
        ? `only ${files.length} files`
        : bad.length
        ? `not owner-only: ${bad.join(", ")}`
        : null;
    }],
    ["another user (nobody) opens none of the session's files", async () => {
      const files = sessionFiles(a);
      files.push(`${a.isolation.root}control.sock`);
      const out = await new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "/usr/bin/python3",
          "-c",
          NOBODY_SCRIPT,
          ...files,
        ],
        stdin: "null",
        signal: AbortSignal.timeout(20_000),
      }).output();
      if (!out.success) {
        return `the probe failed: ${new TextDecoder().decode(out.stderr)}`;
      }
      const opened = JSON.parse(new TextDecoder().decode(out.stdout));
      return opened.length ? `nobody opened ${opened.join(", ")}` : null;
    }],
    [
      "a second session with the same channel names gets only its own data",
      async () => {
        const b = await open(echo());
        const streamB = stream(b, "b");
        await until(() => streamB.got.length >= 10, 5000);
        await streamB.stop();
        await b.close();
        const foreign = streamB.got.filter((t) => !t.startsWith("b-"));
        return foreign.length
          ? `got ${foreign.length} of session A's: ${foreign.slice(0, 3)}`
          : streamB.got.length < 10
          ? `only ${streamB.got.length} of its own`
          : null;
      },
    ],
    [
      "a raw context guessing the channel names reads and reaches nothing",
      async () => {
        await using ctx = await ChannelContext.create();
        prefixes.add(ctx.isolation.prefix);
        // Publishing under the guessed names reaches nobody of the live
        // session (its stream counts foreign samples).
        {
          using pub = ctx.channel("in.in").publisher();
          for (let i = 0; i < 5; i++) pub.tryPublish(text(`guess-${i}`));
        }
        let got = 0;
        for (const name of ["in.in", "n.out"]) {
          using sub = ctx.channel(name).subscriber();
          const deadline = performance.now() + 400;
          while (performance.now() < deadline) {
            using s = await sub.receive({ timeoutMs: 100 });
            if (s) got++;
          }
        }
        return got ? `read ${got} samples` : null;
      },
    ],
    ["a node sees only the minimal environment plus python.env", async () => {
      Deno.env.set("RMP_ISOLATION_SECRET", "hunter2");
      try {
        const r = await report(open, "");
        const leaked = Object.keys(r.environ).filter((k) => !NODE_ENV.has(k));
        return r.environ.GIVEN_BY_CONFIG !== "yes"
          ? "python.env not passed"
          : leaked.length
          ? `inherited ${leaked.join(", ")}`
          : null;
      } finally {
        Deno.env.delete("RMP_ISOLATION_SECRET");
      }
    }],
    [
      "a module in the working folder or an unconfigured folder is not importable",
      async () => {
        const cwd = `${tmp}/cwd`;
        await Deno.mkdir(`${cwd}/unconfigured`, { recursive: true });
        await Deno.writeTextFile(`${cwd}/rmp_cwd_mod.py`, "X = 1\n");
        await Deno.writeTextFile(`${cwd}/unconfigured/rmp_unconf_mod.py`, "");
        const before = Deno.cwd();
        Deno.chdir(cwd);
        try {
          const r = await report(
            open,
            "rmp_cwd_mod,unconfigured.rmp_unconf_mod",
          );
          const importable = Object.entries(r.imports).filter(([, v]) => v);
          return importable.length
            ? `importable: ${importable.map(([k]) => k)} (sys.path ${r.path})`
            : null;
        } finally {
          Deno.chdir(before);
        }
      },
    ],
    [
      "an inherited PYTHONPATH cannot shadow a configured node module",
      async () => {
        // The program's PYTHONPATH is passed on (README, permissions), but
        // after the configured folders: its bad_nodes.py must not win.
        const shadow = `${tmp}/shadow`;
        await Deno.mkdir(shadow, { recursive: true });
        await Deno.writeTextFile(
          `${shadow}/bad_nodes.py`,
          'raise RuntimeError("the shadow module was imported")\n',
        );
        const before = Deno.env.get("PYTHONPATH");
        Deno.env.set("PYTHONPATH", shadow);
        try {
          const r = await report(open, "bad_nodes");
          const mine = r.path.indexOf(`${root}reliability/nodes`);
          const theirs = r.path.indexOf(shadow);
          return mine >= 0 && (theirs < 0 || mine < theirs)
            ? null
            : `sys.path ${r.path}`;
        } finally {
          if (before === undefined) Deno.env.delete("PYTHONPATH");
          else Deno.env.set("PYTHONPATH", before);
        }
      },
    ],
    [
      "modules: a module only in the working folder is NodeModuleError (not found)",
      async () => {
        const before = Deno.cwd();
        Deno.chdir(`${tmp}/cwd`);
        try {
          await executor.createSession(echo(), {
            modules: ["bad_nodes", "rmp_cwd_mod"],
            modulePaths: [`${root}reliability/nodes`],
            printLogs: false,
          }).then(async (s) => {
            prefixes.add(s.isolation.prefix);
            await s.close();
          });
          return "the session started";
        } catch (e) {
          return e instanceof NodeModuleError &&
              e.failures.some((f) => f.module === "rmp_cwd_mod" && f.notFound)
            ? null
            : `${(e as Error).name}: ${(e as Error).message}`;
        } finally {
          Deno.chdir(before);
        }
      },
    ],
  ];

  const failures: string[] = [];
  let passed = 0;
  for (const [name, run] of checks) {
    let problem: string | null;
    try {
      problem = await run();
    } catch (e) {
      problem = `threw ${(e as Error).name}: ${(e as Error).message}`;
    }
    if (problem === null) passed++;
    else failures.push(`${name}: ${problem}`);
    log(`isolation: ${problem === null ? "ok" : "FAILED"} ${name}`);
  }
  await streamA.stop();
  const lost = streamA.sent - streamA.got.length;
  const foreign = streamA.got.filter((t) => !t.startsWith("a-")).length;
  await a.close();
  await executor.close();
  await Deno.remove(tmp, { recursive: true });
  const streamOk = lost === 0 && foreign === 0;
  if (!streamOk) {
    failures.push(
      `the streaming session lost ${lost} of ${streamA.sent} and got ${foreign} foreign samples`,
    );
  }
  await until(() => descendants().length === 0, 5000);
  const procs = new Set([...descendants(), ...processesUsing(prefixes)]);
  const left = filesLeft(prefixes);
  for (const f of left) failures.push(`left ${f}`);
  if (procs.size) failures.push(`left processes ${[...procs]}`);
  const row: ScenarioResult = {
    scenario: "isolation",
    runs: checks.length + 1,
    passed: passed + (streamOk ? 1 : 0),
    detect_p50_ms: null,
    detect_p95_ms: null,
    procs_left: procs.size,
    shm_left: left.length,
    rss_growth_mb: null,
    failures,
    extra: { streamed: streamA.sent, stream_lost: lost },
  };
  return [row];
};

/** The variables a node may see (docs/config.md, "Node environment"). */
const NODE_ENV = new Set([
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
  "PYTHONSAFEPATH",
  "PYTHONDONTWRITEBYTECODE",
  "PYTHONUNBUFFERED",
  "PYTHONPATH",
  "RMP_IOX2_PREFIX",
  "RMP_IOX2_ROOT",
  "GIVEN_BY_CONFIG",
]);

/** The session's root, its lock file and its shared memory. */
function sessionFiles(s: Session): string[] {
  const { prefix, root } = s.isolation;
  const files = [root, `${root.slice(0, -1)}.lock`];
  for (const e of Deno.readDirSync("/dev/shm")) {
    if (e.name.startsWith(prefix)) files.push(`/dev/shm/${e.name}`);
  }
  return files;
}

interface Report {
  environ: Record<string, string>;
  path: string[];
  imports: Record<string, boolean>;
}

/** What an env_report node sees, probing the modules `probe`. */
async function report(
  open: (p: Pipeline) => Promise<Session>,
  probe: string,
): Promise<Report> {
  const s = await open(
    new Pipeline().addNode("env_report", "n", { probe })
      .addInput("in", "n", "in").addOutput("out", "n", "out"),
  );
  try {
    await s.send("in", text("x"));
    for await (const x of s.receive("out", { timeoutMs: 10_000 })) {
      return JSON.parse((x.data as TextData).text);
    }
    throw new Error("no report");
  } finally {
    await s.close();
  }
}
