/** Test helpers: where shared memory is mapped, checksums, payload patterns. */

/** Address ranges of this process's mappings of files under /dev/shm whose name starts with `prefix`. */
export function shmMappings(prefix: string): Array<[bigint, bigint]> {
  const maps = Deno.readTextFileSync("/proc/self/maps");
  const ranges: Array<[bigint, bigint]> = [];
  for (const line of maps.split("\n")) {
    const parts = line.trim().split(/\s+/);
    const path = parts[5];
    if (!path?.startsWith(`/dev/shm/${prefix}`)) continue;
    const [start, end] = parts[0].split("-").map((h) => BigInt(`0x${h}`));
    ranges.push([start, end]);
  }
  return ranges;
}

/** The address of a view's first byte. */
export function addressOf(bytes: Uint8Array): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes));
}

/** True when all of `bytes` lies inside one of `ranges`. */
export function inside(
  bytes: Uint8Array,
  ranges: Array<[bigint, bigint]>,
): boolean {
  const start = addressOf(bytes);
  const end = start + BigInt(bytes.byteLength);
  return ranges.some(([s, e]) => start >= s && end <= e);
}

/** SHA-256 of bytes as hex (copies into a digest input only for hashing). */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

const PATTERN_BLOCK = 4096;

/** Fills `target` with a deterministic pattern of `seed` (same as tests/peers/peer.py). */
export function fillPattern(target: Uint8Array, seed: number): void {
  const block = new Uint8Array(PATTERN_BLOCK);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < PATTERN_BLOCK; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    block[i] = x & 0xff;
  }
  for (let at = 0; at < target.length; at += PATTERN_BLOCK) {
    target.set(
      block.subarray(0, Math.min(PATTERN_BLOCK, target.length - at)),
      at,
    );
  }
}
