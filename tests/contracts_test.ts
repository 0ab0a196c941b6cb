/**
 * The cross-language contracts: the generated copies are what
 * protocol/contracts.toml generates, and the three descriptions of the C ABI
 * (Rust exports, rmp.h, the Deno symbol table) name the same functions.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { symbols } from "../data/symbols.ts";
import { nativeLibrary } from "../data/native.ts";
import { ABI_VERSION } from "../protocol/contracts.ts";

const root = new URL("..", import.meta.url).pathname;

Deno.test("the checked-in contract copies are what protocol/contracts.toml generates", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/gen_contracts.ts", "--check"],
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(code, 0, new TextDecoder().decode(stderr));
});

Deno.test("lib.rs, rmp.h and data/symbols.ts declare the same C functions", () => {
  const rust = [
    ...Deno.readTextFileSync(`${root}ffi/src/lib.rs`).matchAll(
      /#\[no_mangle\]\s*pub (?:unsafe )?extern "C" fn (rmp_\w+)/g,
    ),
  ].map((m) => m[1]).sort();
  const header = [
    ...Deno.readTextFileSync(`${root}ffi/include/rmp.h`).matchAll(
      /^\w[\w\s*]*?\b(rmp_\w+)\(/gm,
    ),
  ].map((m) => m[1]).sort();
  // An entry may bind a function under another key (`name`), e.g. a
  // nonblocking variant: count the C function once.
  const table = [
    ...new Set(
      Object.entries(symbols).map(([key, def]) =>
        (def as { name?: string }).name ?? key
      ),
    ),
  ].sort();
  assert(rust.length > 10, `found ${rust.length} Rust exports`);
  assertEquals(header, rust, "rmp.h against lib.rs");
  assertEquals(table, rust, "data/symbols.ts against lib.rs");
});

Deno.test("the native library's ABI version is the contract's", () => {
  assertEquals(nativeLibrary().rmp_abi_version(), ABI_VERSION);
});
