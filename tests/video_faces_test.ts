/**
 * The video pipeline (examples/video_faces/) on real MediaPipe in its own
 * environment, and per-node Python environments: numpy 1 beside numpy 2, the
 * iceoryx2 version check, bad environment names.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertThrows,
} from "./support/assert.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import {
  ConfigError,
  Iceoryx2VersionError,
  PipelineValidationError,
} from "../errors.ts";
import { Pipeline } from "../pipeline/mod.ts";
import { binary } from "../data/runtime_data/mod.ts";
import { ICEORYX2_VERSION } from "../protocol/contracts.ts";
import { nextWithin, python, root } from "./support/sessions.ts";
import {
  type Detections,
  type DrawStats,
  runVideo,
} from "../examples/video_faces/run.ts";
import { FaceScene, type SceneContent } from "../examples/video_faces/scene.ts";

const MEDIAPIPE_PYTHON = `${root}.venvs/mediapipe/bin/python`;

/** Fails with a clear message when the example environment is missing. */
function needMediapipeEnv(): void {
  try {
    Deno.statSync(MEDIAPIPE_PYTHON);
  } catch {
    throw new Error(
      `The example environment .venvs/mediapipe is missing (${MEDIAPIPE_PYTHON}): build it with \`deno task setup --examples=mediapipe\` (\`deno task test\` does)`,
    );
  }
}

/** The address ranges of this process's /dev/shm mappings. */
function shmRanges(): [bigint, bigint][] {
  return Deno.readTextFileSync("/proc/self/maps").split("\n")
    .filter((l) => l.includes("/dev/shm/"))
    .map((l) => {
      const [lo, hi] = l.split(" ")[0].split("-");
      return [BigInt(`0x${lo}`), BigInt(`0x${hi}`)];
    });
}

/** Whether all of `bytes` lie in one shared-memory mapping of this process. */
function inShm(bytes: Uint8Array): boolean {
  const lo = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
  const hi = lo + BigInt(bytes.byteLength);
  return shmRanges().some(([a, b]) => a <= lo && hi <= b);
}

const GREEN = [0, 255, 0];

function isGreen(px: Uint8Array, width: number, x: number, y: number): boolean {
  const i = (y * width + x) * 3;
  return px[i] === GREEN[0] && px[i + 1] === GREEN[1] && px[i + 2] === GREEN[2];
}

function countGreen(px: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < px.length; i += 3) {
    if (px[i] === 0 && px[i + 1] === 255 && px[i + 2] === 0) n++;
  }
  return n;
}

Deno.test("video: a face is found on frames with one, none on frames without, and the boxes are drawn", async () => {
  needMediapipeEnv();
  const scene = await FaceScene.load({ period: 20 });
  // 0-9: the astronaut sweeping; 10-17: the coffee cup; 18-21: background.
  const content = (n: number): SceneContent =>
    n < 10 ? "face" : n < 18 ? "no_face" : "empty";
  const seen = new Map<number, Detections>();
  const boxChecks: string[] = [];
  const stats = await runVideo({
    frames: 22,
    scenePeriod: 20, // frames 0-9 sweep the face from the left to the right
    inFlight: 1, // frame n-1 is complete when frame n is drawn
    content,
    onDetections: (d) => seen.set(d.frame, d),
    onAnnotated: (frame, n) => {
      const px = frame.data;
      if (content(n) !== "face") {
        // Frames after the first face-free one carry no box.
        if (n >= 11) assertEquals(countGreen(px), 0, `frame ${n} has no box`);
        return;
      }
      // The boxes drawn come from frame n or n-1 (the detector works beside
      // the drawer): one of them must be on this frame's top edge.
      const candidates = [seen.get(n), seen.get(n - 1)].flatMap((d) =>
        d?.faces ?? []
      );
      if (n === 0) return; // the drawer may not have any boxes yet
      const drawn = candidates.some((f) =>
        isGreen(px, frame.width, f.x + Math.floor(f.w / 2), f.y + 1)
      );
      if (!drawn) boxChecks.push(`frame ${n}: no box on its face`);
    },
  });
  assertEquals(stats.frames, 22);
  assertEquals(boxChecks, []);
  for (let n = 0; n < 22; n++) {
    const d = seen.get(n);
    assert(d, `detections of frame ${n} arrived`);
    assertEquals([d.width, d.height], [1280, 720]);
    if (content(n) === "face") {
      assertEquals(d.faces.length, 1, `frame ${n}: one face`);
      const [f] = d.faces;
      const want = scene.faceBox(n);
      const cx = f.x + f.w / 2, cy = f.y + f.h / 2;
      assert(
        Math.abs(cx - (want.x + want.w / 2)) < want.w / 2 &&
          Math.abs(cy - (want.y + want.h / 2)) < want.h / 2,
        `frame ${n}: the box ${JSON.stringify(f)} is on the face near ${
          JSON.stringify(want)
        }`,
      );
      assert(f.score > 0.5, `frame ${n}: score ${f.score}`);
    } else {
      assertEquals(d.faces, [], `frame ${n} (${content(n)}): no face`);
    }
  }
  // The face moved: its box followed it.
  const xs = [0, 9].map((n) => seen.get(n)!.faces[0].x);
  assert(xs[1] - xs[0] > 300, `the box moved with the face: ${xs}`);
});

Deno.test("video: frames stay in place: every payload is shared memory and no process allocates a frame", async () => {
  needMediapipeEnv();
  const scene = await FaceScene.load();
  const frameBytes = scene.frameBytes; // 2.6 MiB
  // A copy of a frame anywhere in a node's process is a frame-sized
  // allocation; what a node allocates per frame otherwise is small.
  const bound = frameBytes / 8;
  const detect: Detections[] = [];
  const draw: DrawStats[] = [];
  const denoSide: string[] = [];
  const stats = await runVideo({
    frames: 40,
    detectors: 2, // two detectors, each on its own input (frames0, frames1)
    inFlight: 3,
    nodeConfig: { trace: true },
    onDetections: (d) => detect.push(d),
    onDrawStats: (s) => draw.push(s),
    // Deno writes each frame into shared memory and reads the annotated
    // frame from it: the bytes it touches are in a /dev/shm mapping.
    onAllocated: (data, n) => {
      if (!inShm(data)) denoSide.push(`frame ${n} allocated outside shm`);
    },
    onAnnotated: (frame, n) => {
      if (!inShm(frame.data)) denoSide.push(`annotated ${n} outside shm`);
    },
  });
  assertEquals(stats.frames, 40);
  assertEquals(denoSide, []);
  assertEquals(detect.length, 40);
  assert(draw.length >= 39, `draw stats: ${draw.length}`);
  // The first inputs warm the runner up (imports, caches): skip two.
  for (const d of detect.filter((d) => d.frame >= 2)) {
    assert(d.input_in_shm === true, `detect: frame ${d.frame} in shm`);
    assert(
      d.alloc_peak_bytes! < bound,
      `detect: frame ${d.frame} allocated ${d.alloc_peak_bytes} bytes (a frame is ${frameBytes})`,
    );
  }
  for (const s of draw.filter((s) => s.frame >= 2)) {
    assert(s.input_in_shm && s.output_in_shm, `draw: frame ${s.frame} in shm`);
    assert(
      s.alloc_peak_bytes < bound,
      `draw: frame ${s.frame} allocated ${s.alloc_peak_bytes} bytes (a frame is ${frameBytes})`,
    );
  }
});

/** An executor with the mediapipe environment (numpy 1) named "np1". */
function envExecutor(
  envs: Record<string, { venvPath?: string; executable?: string }> = {
    np1: { venvPath: `${root}.venvs/mediapipe` },
  },
): MultiprocessExecutor {
  return new MultiprocessExecutor({
    python: { executable: python, envs },
    initTimeoutSecs: 60,
  });
}

const envModules = {
  modules: ["env_nodes"],
  modulePaths: [`${root}tests/nodes`],
};

function envPipeline(env: string | undefined): Pipeline {
  return new Pipeline()
    .addNode("env_report", "a") // the default environment
    .addNode("env_report", "b", {}, { env })
    .addInput("in", "a", "in")
    .addInput("in", "b", "in")
    .addOutput("a", "a", "out")
    .addOutput("b", "b", "out");
}

Deno.test("envs: a node in an environment with numpy 1 runs beside a node with numpy 2", async () => {
  needMediapipeEnv();
  await using ex = envExecutor();
  // Types are listed per environment.
  const listed = await ex.listNodeTypes({ ...envModules, env: "np1" });
  assert(listed.types.has("env_report"));
  await using session = await ex.createSession(envPipeline("np1"), envModules);
  await session.initialize();
  const payload = new Uint8Array(4096).map((_, i) => i % 251);
  const want = payload.reduce((s, v) => s + v, 0);
  await session.send("in", binary(payload));
  const got: Record<string, Record<string, unknown>> = {};
  for (const out of ["a", "b"]) {
    const data = await nextWithin(
      session.receive(out),
      30_000,
      `output ${out}`,
    );
    assert(data.kind === "json");
    got[out] = data.value as Record<string, unknown>;
  }
  assert(String(got.a.numpy).startsWith("2."), `a: numpy ${got.a.numpy}`);
  assert(String(got.b.numpy).startsWith("1."), `b: numpy ${got.b.numpy}`);
  assertEquals(got.a.executable, python);
  assert(String(got.b.executable).includes("/.venvs/mediapipe/"));
  assertEquals([got.a.sum, got.b.sum], [want, want]);
});

/** A real venv (no packages) whose metadata says iceoryx2 `version`. */
async function venvWithIceoryx2(version: string | null): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "rmp-env-test-" });
  const made = await new Deno.Command("python3", {
    args: ["-m", "venv", "--without-pip", dir],
  }).output();
  assert(made.success, new TextDecoder().decode(made.stderr));
  if (version !== null) {
    const lib = `${dir}/lib`;
    const [pyDir] = [...Deno.readDirSync(lib)].map((e) => e.name);
    const info = `${lib}/${pyDir}/site-packages/iceoryx2-${version}.dist-info`;
    Deno.mkdirSync(info, { recursive: true });
    Deno.writeTextFileSync(
      `${info}/METADATA`,
      `Metadata-Version: 2.1\nName: iceoryx2\nVersion: ${version}\n`,
    );
  }
  return dir;
}

Deno.test("envs: an environment with another iceoryx2 (or none) is an Iceoryx2VersionError, nothing spawned", async () => {
  for (const version of ["0.9.0", null]) {
    const venv = await venvWithIceoryx2(version);
    try {
      await using ex = envExecutor({ old: { venvPath: venv } });
      const e = await assertRejects(
        () => ex.createSession(envPipeline("old"), envModules),
        Iceoryx2VersionError,
      ) as Iceoryx2VersionError;
      assertEquals(
        [e.env, e.found, e.wanted, e.executable],
        ["old", version, ICEORYX2_VERSION, `${venv}/bin/python`],
      );
      assert(
        e.message.includes(`"old"`) && e.message.includes(ICEORYX2_VERSION),
      );
      assertEquals(ex.sessions.length, 0);
    } finally {
      await Deno.remove(venv, { recursive: true });
    }
  }
});

Deno.test("envs: bad environment names are named errors before anything runs", async () => {
  await using ex = envExecutor({ np1: { executable: python } });
  // A name that no [multiprocess.python.envs] table gives.
  const e = await assertRejects(
    () => ex.createSession(envPipeline("nope"), envModules),
    PipelineValidationError,
  ) as PipelineValidationError;
  assertEquals([e.code, e.nodeId], ["unknown_env", "b"]);
  assert(e.message.includes(`"nope"`) && e.message.includes("np1"));
  await assertRejects(
    () => ex.listNodeTypes({ ...envModules, env: "nope" }),
    ConfigError,
    'No Python environment "nope"',
  );
  // Not a name at all: in code and in a pipeline file.
  const bad = assertThrows(
    () => new Pipeline().addNode("env_report", "a", {}, { env: "no spaces" }),
    PipelineValidationError,
  ) as PipelineValidationError;
  assertEquals(bad.code, "invalid_name");
  const fromJson = assertThrows(
    () =>
      Pipeline.fromJSON({
        version: 1,
        nodes: [{ id: "a", type: "t", env: 3 }],
        connections: [],
        inputs: [],
        outputs: [],
      }),
    PipelineValidationError,
    "env",
  ) as PipelineValidationError;
  assertEquals(fromJson.code, "invalid_schema");
  // A type the environment does not register lists the types per environment.
  await using ex2 = envExecutor({ np1: { executable: python } });
  const p = new Pipeline().addNode("no_such_type", "x", {}, { env: "np1" })
    .addInput("in", "x", "in");
  const u = await assertRejects(
    () => ex2.createSession(p, envModules),
    PipelineValidationError,
  ) as PipelineValidationError;
  assertEquals(u.code, "unknown_node_type");
  assert(
    u.message.includes('environment "np1"') &&
      u.message.includes("np1: env_report"),
    u.message,
  );
});

Deno.test("envs: the env of a node survives JSON and TOML round trips", () => {
  const p = envPipeline("np1");
  for (
    const q of [Pipeline.fromJSON(p.toJSON()), Pipeline.fromToml(p.toToml())]
  ) {
    assertEquals(q.toJSON().nodes.map((n) => n.env), [undefined, "np1"]);
  }
});

Deno.test("video: examples/video_faces/main.ts (deno task demo:video) prints fps and the latency per stage", async () => {
  needMediapipeEnv();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "examples/video_faces/main.ts", "--seconds=2"],
    cwd: root,
    signal: AbortSignal.timeout(120_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert(out.success, text);
  const m = text.match(
    /frames: (\d+) in [\d.]+ s = ([\d.]+) fps; a face found in (\d+) of them/,
  );
  assert(m, text);
  assert(Number(m[1]) > 10 && Number(m[2]) > 5, text);
  assertEquals(m[3], m[1], "every frame of the scene shows the face");
  for (
    const stage of ["stage detect (model", "stage detect (frame", "stage draw"]
  ) {
    assert(
      new RegExp(
        `${stage.replace(/[()]/g, "\\$&")}.*p50 [\\d.]+ ms, p95 [\\d.]+ ms`,
      ).test(text),
      text,
    );
  }
});
