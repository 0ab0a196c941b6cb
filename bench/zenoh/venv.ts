/**
 * The Zenoh venv of `bench:hosts` and of the multi-host tests (issue 14):
 * `.cache/zenoh-venv`, with `eclipse-zenoh` 1.10.2 from PyPI, numpy and this
 * package's Python SDK (editable, as `deno task setup --examples` installs it
 * into an example venv), created on first use like `.cache/bench-dora-venv`
 * (see `bench/dora_hops.ts`).
 *
 * @module
 */

const root = new URL("../../", import.meta.url).pathname;
/** The Zenoh venv. */
export const ZENOH_VENV = `${root}.cache/zenoh-venv`;
/** Its Python. */
export const ZENOH_PYTHON = `${ZENOH_VENV}/bin/python`;
/** What is installed into it from PyPI (exact pin of issue 14). */
export const ZENOH_PACKAGES = ["eclipse-zenoh==1.10.2", "numpy"];

async function run(cmd: string, args: string[], what: string): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output().catch((cause) => {
    throw new Error(`Cannot run ${cmd} (${what})`, { cause });
  });
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")
      .slice(-5).join("\n");
    throw new Error(`Zenoh venv: ${what} failed (exit ${out.code}):\n${err}`);
  }
}

/**
 * Creates `.cache/zenoh-venv` and installs Zenoh and the SDK once (a marker
 * file records what was installed; a changed list reinstalls).
 *
 * @param log Where progress goes (stderr by default, so `--json` stays clean).
 * @returns The venv's Python.
 */
export async function ensureZenoh(
  log: (line: string) => void = console.error,
): Promise<string> {
  const marker = `${ZENOH_VENV}/.installed`;
  const want = [...ZENOH_PACKAGES, "-e python"].join(" ");
  try {
    if ((await Deno.readTextFile(marker)).trim() === want) return ZENOH_PYTHON;
  } catch { /* not installed yet */ }
  log(`zenoh: installing ${want} into ${ZENOH_VENV}`);
  await run("python3", ["-m", "venv", ZENOH_VENV], "creating the venv");
  const pip = [
    "-m",
    "pip",
    "install",
    "--quiet",
    "--disable-pip-version-check",
  ];
  await run(
    ZENOH_PYTHON,
    [...pip, ...ZENOH_PACKAGES],
    "pip install eclipse-zenoh",
  );
  await run(
    ZENOH_PYTHON,
    [...pip, "--no-warn-conflicts", "-e", "python"],
    "installing the SDK (pip install -e python)",
  );
  await Deno.writeTextFile(marker, want + "\n");
  return ZENOH_PYTHON;
}

if (import.meta.main) console.log(await ensureZenoh());
