export async function doraHops(
  _sizes: number[],
  _o: { iterations: number; warmup: number; gapMs: number; quiet: boolean },
): Promise<Map<number, number[]>> {
  await Promise.resolve();
  return new Map();
}
