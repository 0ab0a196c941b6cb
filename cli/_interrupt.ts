/**
 * Ctrl-C for the CLI: the first SIGINT (or SIGTERM) runs the command's clean
 * up (bounded), then exits 130 (143 for SIGTERM); a second one exits at once.
 *
 * @module
 */

/** The longest a clean-up may take before the CLI exits anyway. */
const CLEANUP_BOUND_MS = 6000;

/**
 * Installs the handler.
 *
 * @param cleanup Stops everything the command started.
 * @returns A function that removes the handler.
 *
 * @example
 * ```ts ignore
 * const remove = onInterrupt(() => session.close());
 * ```
 */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  let interrupted = false;
  const handler = (signal: "SIGINT" | "SIGTERM") => async () => {
    const code = signal === "SIGINT" ? 130 : 143;
    if (interrupted) Deno.exit(code);
    interrupted = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      cleanup().catch((e) => console.error(`Clean-up failed: ${e}`)),
      new Promise((r) => timer = setTimeout(r, CLEANUP_BOUND_MS)),
    ]);
    clearTimeout(timer);
    Deno.exit(code);
  };
  const onInt = handler("SIGINT");
  const onTerm = handler("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  return () => {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  };
}
