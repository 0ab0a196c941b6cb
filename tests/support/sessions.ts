/** Test helpers for sessions of real node processes. */
import { assert } from "./assert.ts";
import { MultiprocessExecutor } from "../../control/executor.ts";
import { Pipeline } from "../../pipeline/mod.ts";
import type { Sample } from "../../data/channel/mod.ts";
import type { RuntimeData } from "../../data/runtime_data/mod.ts";

/** The checkout's root folder, with a trailing slash. */
export const root: string = new URL("../../", import.meta.url).pathname;

/** The example and test node modules. */
export const modules: { modules: string[]; modulePaths: string[] } = {
  modules: ["demo_nodes", "exec_nodes"],
  modulePaths: [`${root}examples/nodes`, `${root}tests/nodes`],
};

/** The checkout's venv Python. */
export const python: string = `${root}.venv/bin/python`;

/** An executor on the checkout's venv with a 30 s init timeout. */
export function executor(
  extra: Record<string, unknown> = {},
): MultiprocessExecutor {
  return new MultiprocessExecutor({
    python: { executable: python },
    initTimeoutSecs: 30,
    ...extra,
  });
}

/** A one-node pipeline: input "in" -> node "n" -> output "out". */
export function single(
  type: string,
  config: Record<string, string | number> = {},
): Pipeline {
  return new Pipeline().addNode(type, "n", config).addInput("in", "n", "in")
    .addOutput("out", "n", "out");
}

/** True while `pid` runs (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.split(") ")[1].startsWith("Z");
  } catch {
    return false;
  }
}

/** The next sample's data of `outputs`, failing after `ms` (never hangs). */
export async function nextWithin(
  outputs: AsyncGenerator<Sample, void, undefined>,
  ms: number,
  what: string,
): Promise<RuntimeData> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const next = await Promise.race([
    outputs.next(),
    new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    }),
  ]);
  clearTimeout(timer);
  assert(next !== null, `no ${what} within ${ms} ms`);
  assert(!next.done, `the outputs ended before ${what}`);
  return next.value.data;
}

/** Resolves with `promise`'s settlement, or fails after `ms` (never hangs). */
export async function settleWithin<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<PromiseSettledResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    promise.then(
      (value): PromiseSettledResult<T> => ({ status: "fulfilled", value }),
      (reason): PromiseSettledResult<T> => ({ status: "rejected", reason }),
    ),
    new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    }),
  ]);
  clearTimeout(timer);
  assert(result !== null, `${what} did not settle within ${ms} ms`);
  return result;
}

/** Waits until `done()` holds, checking every 20 ms, for at most `ms`. */
export async function waitUntil(
  done: () => boolean,
  ms: number,
): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
