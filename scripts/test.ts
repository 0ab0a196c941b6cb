/**
 * `deno task test`: sets up (the example environments included), runs the Deno tests and pytest, and ends with the
 * plain line `N passed, M failed` (the sum of both suites).
 *
 * @module
 */
import { setup, setupExamples } from "./setup.ts";

const root = new URL("../", import.meta.url).pathname;

async function runSuite(
  cmd: string,
  args: string[],
  parse: (out: string) => [number, number] | null,
): Promise<[number, number, number]> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    const part = decoder.decode(chunk, { stream: true });
    text += part;
    await Deno.stdout.write(chunk);
  }
  const { code } = await child.status;
  // deno-lint-ignore no-control-regex -- strip ANSI colours before parsing
  const counts = parse(text.replace(/\x1b\[[0-9;]*m/g, ""));
  return counts ? [counts[0], counts[1], code] : [0, code === 0 ? 0 : 1, code];
}

function parseDeno(out: string): [number, number] | null {
  const m = [
    ...out.matchAll(
      /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/g,
    ),
  ]
    .at(-1);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function parsePytest(out: string): [number, number] | null {
  const line = out.trim().split("\n").reverse().find((l) =>
    /\d+ (passed|failed|error)/.test(l)
  );
  if (!line) return null;
  const n = (word: string) =>
    Number(line.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? 0);
  return [n("passed"), n("failed") + n("errors?")];
}

function parseClosingLine(out: string): [number, number] | null {
  const m = [...out.matchAll(/^(\d+) passed, (\d+) failed$/gm)].at(-1);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function parseCargo(out: string): [number, number] | null {
  const results = [
    ...out.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g),
  ];
  if (!results.length) return null;
  return results.reduce<[number, number]>(
    (sum, m) => [sum[0] + Number(m[1]), sum[1] + Number(m[2])],
    [0, 0],
  );
}

await setup();
// The example environments (.venvs/<name>/ from examples/envs/) too: tests
// that need one find it at .venvs/<name>/bin/python.
await setupExamples();
const filter = Deno.args;
// The examples in the JSDoc of every public entry point run too.
const entryPoints = Object.values(
  JSON.parse(await Deno.readTextFile(`${root}deno.json`)).exports as Record<
    string,
    string
  >,
);
const deno = await runSuite(
  Deno.execPath(),
  filter.length
    ? ["test", "-A", "--quiet", ...filter]
    : ["test", "-A", "--quiet", "--doc", "tests/", ...entryPoints],
  parseDeno,
);
const py = filter.length ? [0, 0, 0] : await runSuite(
  `${root}.venv/bin/python`,
  ["-m", "pytest", "-q", "python/tests"],
  parsePytest,
);
const rust = filter.length ? [0, 0, 0] : await runSuite(
  "cargo",
  ["test", "--release", "--manifest-path", "ffi/Cargo.toml"],
  parseCargo,
);
// The CI-sized reliability suite (reliability/main.ts): one count per row.
const reliability = filter.length ? [0, 0, 0] : await runSuite(
  Deno.execPath(),
  ["run", "-A", "reliability/main.ts", "--count-rows"],
  parseClosingLine,
);
const suites = [deno, py, rust, reliability];
const passed = suites.reduce((n, s) => n + s[0], 0);
const failed = suites.reduce((n, s) => n + s[1], 0);
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 && suites.every((s) => s[2] === 0) ? 0 : 1);
