/**
 * Lines out of a byte stream with bounded memory: node processes' stdout and
 * stderr (control/node_process.ts) and the hosts link's pipes
 * (control/host_link.ts).
 *
 * @module
 */

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into lines in linear time with bounded memory: at most
 * `maxLineBytes` are held for an unfinished line.
 */
export async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string, continued: boolean) => void,
  maxLineBytes: number,
): Promise<void> {
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let held = 0;
  const flush = (continued: boolean) => {
    let bytes: Uint8Array;
    if (parts.length === 1) bytes = parts[0];
    else {
      bytes = new Uint8Array(held);
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
    }
    parts = [];
    held = 0;
    let line = decoder.decode(bytes, { stream: continued });
    if (!continued && line.endsWith("\r")) line = line.slice(0, -1);
    onLine(line, continued);
  };
  try {
    for await (const chunk of stream) {
      let start = 0;
      while (start < chunk.length) {
        const newline = chunk.indexOf(NEWLINE, start);
        const end = newline < 0 ? chunk.length : newline;
        while (held + (end - start) > maxLineBytes) {
          const take = maxLineBytes - held;
          parts.push(chunk.subarray(start, start + take));
          held += take;
          start += take;
          flush(true);
        }
        if (end > start) {
          // Copy: a chunk's buffer may be reused by the stream.
          parts.push(chunk.slice(start, end));
          held += end - start;
        }
        if (newline < 0) break;
        flush(false);
        start = newline + 1;
      }
    }
  } catch { /* the process is gone */ }
  if (held > 0) flush(false);
}
