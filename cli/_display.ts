/**
 * What `remotemedia run` shows: on a terminal, one progress bar per node
 * while the nodes load (state, fraction, message, elapsed; a heartbeat only
 * moves the clock), then one live status line per node (state, messages in
 * and out, rate, queue occupancy, RSS); not on a terminal, plain lines; with
 * `--json`, one JSON event per line on stdout.
 *
 * @module
 */
import type { ProgressEvent, SessionStats } from "../control/session.ts";
import type { Pipeline } from "../pipeline/mod.ts";

/** How the display renders. */
export type DisplayMode = "tty" | "plain" | "json";

/** One node's live figures, computed from two successive stats snapshots. */
export interface StatusRow {
  /** The node id. */
  nodeId: string;
  /** Its state. */
  state: string;
  /** Messages it received. */
  received: number;
  /** Messages it sent. */
  sent: number;
  /** Messages received per second since the last snapshot. */
  rate: number;
  /** Messages waiting in its input channels. */
  queue: number;
  /** Its input channels' capacity (sum). */
  capacity: number;
  /** Resident memory in bytes. */
  rssBytes?: number;
}

interface NodeLine {
  id: string;
  type: string;
  phase: string;
  fraction: number | null;
  message: string;
  elapsedMs: number;
  at: number;
  done: boolean;
}

const BAR = 20;
const encoder = new TextEncoder();

/** Formats bytes as MiB with one decimal. */
function mib(bytes: number | undefined): string {
  return bytes === undefined ? "-" : `${(bytes / 1048576).toFixed(1)} MiB`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s.slice(0, n) : s + " ".repeat(n - s.length);
}

/**
 * Computes status rows from a stats snapshot (and the previous one, for rates).
 *
 * @param pipeline The pipeline (which channels feed which node).
 * @param stats The snapshot.
 * @param previous The snapshot before, with its time.
 * @param capacity The channels' capacity.
 * @param dtMs Milliseconds between the two snapshots.
 * @returns One row per node.
 */
export function statusRows(
  pipeline: Pipeline,
  stats: SessionStats,
  previous: SessionStats | undefined,
  capacity: number,
  dtMs: number,
): StatusRow[] {
  const feeds = new Map<string, string[]>();
  for (const ch of pipeline.inputChannels()) {
    for (const r of ch.readers) {
      feeds.set(r.node, [...feeds.get(r.node) ?? [], ch.name]);
    }
  }
  for (const ch of pipeline.channels()) {
    for (const r of ch.readers) {
      feeds.set(r.node, [...feeds.get(r.node) ?? [], ch.name]);
    }
  }
  const occupancy = new Map(stats.channels.map((c) => [c.name, c.occupancy]));
  return stats.processes.map((p) => {
    const before = previous?.processes.find((q) => q.nodeId === p.nodeId);
    const received = p.received ?? before?.received ?? 0;
    const channels = feeds.get(p.nodeId) ?? [];
    return {
      nodeId: p.nodeId,
      state: p.state,
      received,
      sent: p.sent ?? before?.sent ?? 0,
      rate: before && dtMs > 0
        ? Math.max(0, received - (before.received ?? 0)) * 1000 / dtMs
        : 0,
      queue: channels.reduce((a, c) => a + (occupancy.get(c) ?? 0), 0),
      capacity: channels.length * capacity,
      rssBytes: p.rssBytes,
    };
  });
}

/**
 * The run display. Everything it prints goes through it, so node logs and
 * outputs appear above the live block on a terminal.
 */
export class Display {
  /** The mode. */
  readonly mode: DisplayMode;
  readonly #nodes = new Map<string, NodeLine>();
  readonly #startedAt = performance.now();
  #rows: StatusRow[] | undefined;
  #drawn = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  readonly #out: { writeSync(p: Uint8Array): number };
  readonly #err: { writeSync(p: Uint8Array): number };

  /**
   * @param mode How to render.
   * @param pipeline The pipeline, for the node list.
   * @param streams Where to write (stdout and stderr by default).
   */
  constructor(
    mode: DisplayMode,
    pipeline: Pipeline,
    streams: {
      out?: { writeSync(p: Uint8Array): number };
      err?: { writeSync(p: Uint8Array): number };
    } = {},
  ) {
    this.mode = mode;
    this.#out = streams.out ?? Deno.stdout;
    this.#err = streams.err ?? Deno.stderr;
    for (const n of pipeline.toJSON().nodes) {
      this.#nodes.set(n.id, {
        id: n.id,
        type: n.type,
        phase: "idle",
        fraction: null,
        message: "",
        elapsedMs: 0,
        at: performance.now(),
        done: false,
      });
    }
    if (mode === "tty") {
      writeAll(this.#err, "\x1b[?25l"); // hide the cursor while drawing
      this.#timer = setInterval(() => this.#draw(), 100);
    }
  }

  /**
   * A node's progress event.
   *
   * @param e The event.
   */
  progress(e: ProgressEvent): void {
    const n = this.#nodes.get(e.nodeId);
    if (n) {
      n.phase = e.phase;
      n.fraction = e.fraction;
      n.message = e.message;
      n.elapsedMs = e.elapsedMs;
      n.at = performance.now();
      n.done = e.phase === "ready" || e.phase === "failed";
    }
    if (this.mode === "json") {
      this.#json({ event: "progress", ...e });
    } else if (this.mode === "plain" && !e.heartbeat) {
      const pct = e.fraction === null
        ? ""
        : ` ${Math.round(e.fraction * 100)}%`;
      this.#line(
        this.#err,
        `${e.nodeId}: ${e.phase}${pct}${e.message ? ` ${e.message}` : ""} (${
          seconds(e.elapsedMs)
        })`,
      );
    }
  }

  /**
   * Live status rows (after every node is ready).
   *
   * @param rows One per node.
   */
  status(rows: StatusRow[]): void {
    this.#rows = rows;
    if (this.mode === "json") {
      for (const r of rows) this.#json({ event: "status", ...r });
    } else if (this.mode === "plain") {
      for (const r of rows) this.#line(this.#err, `status ${rowText(r)}`);
    }
  }

  /**
   * A line printed above the live block (a node's log, an error).
   *
   * @param text The line.
   * @param event Its JSON form in `--json` mode.
   * @param stdout Print it on stdout (outputs) rather than stderr.
   */
  print(
    text: string,
    event: Record<string, unknown>,
    stdout = false,
  ): void {
    if (this.mode === "json") return this.#json(event);
    if (this.mode === "tty") {
      this.#clear();
      this.#line(stdout ? this.#out : this.#err, text);
      this.#draw();
      return;
    }
    this.#line(stdout ? this.#out : this.#err, text);
  }

  /**
   * A JSON event (json mode only; ignored otherwise).
   *
   * @param event The event.
   */
  event(event: Record<string, unknown>): void {
    if (this.mode === "json") this.#json(event);
  }

  /** Draws once more and restores the terminal (idempotent). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    if (this.mode === "tty") {
      this.#draw(true);
      writeAll(this.#err, "\x1b[?25h");
    }
  }

  /** The lines of the live block. */
  lines(): string[] {
    if (this.#rows) {
      return [
        `${pad("node", 16)} ${pad("state", 12)} ${pad("in", 8)} ${
          pad("out", 8)
        } ${pad("rate", 10)} ${pad("queue", 7)} rss`,
        ...this.#rows.map(rowText),
      ];
    }
    const now = performance.now();
    return [...this.#nodes.values()].map((n) => {
      const elapsed = n.done ? n.elapsedMs : n.elapsedMs + (now - n.at);
      const f = n.fraction ?? 0;
      const filled = Math.round(f * BAR);
      const bar = n.fraction === null && !n.done
        ? "░".repeat(BAR)
        : "█".repeat(n.done && n.phase === "ready" ? BAR : filled) +
          "░".repeat(n.done && n.phase === "ready" ? 0 : BAR - filled);
      const pct = n.phase === "ready"
        ? "100%"
        : n.fraction === null
        ? "  - "
        : `${String(Math.round(f * 100)).padStart(3)}%`;
      return `${pad(`${n.id} (${n.type})`, 28)} [${bar}] ${pct} ${
        pad(n.phase, 8)
      } ${pad(seconds(elapsed), 7)} ${n.message}`;
    });
  }

  #draw(final = false): void {
    if (this.mode !== "tty" || (this.#stopped && !final)) return;
    const width = Math.max(20, consoleColumns() - 1);
    const lines = this.lines().map((l) => l.slice(0, width));
    let text = this.#drawn ? `\x1b[${this.#drawn}F` : "";
    for (const l of lines) text += `\x1b[2K${l}\n`;
    text += "\x1b[J";
    this.#drawn = lines.length;
    writeAll(this.#err, text);
  }

  #clear(): void {
    if (this.#drawn) writeAll(this.#err, `\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }

  #line(to: { writeSync(p: Uint8Array): number }, text: string): void {
    writeAll(to, text + "\n");
  }

  #json(event: Record<string, unknown>): void {
    writeAll(
      this.#out,
      JSON.stringify(
        { t: Math.round(performance.now() - this.#startedAt), ...event },
        (_k, v) => typeof v === "bigint" ? Number(v) : v,
      ) + "\n",
    );
  }
}

function rowText(r: StatusRow): string {
  return `${pad(r.nodeId, 16)} ${pad(r.state, 12)} ${
    pad(String(r.received), 8)
  } ${pad(String(r.sent), 8)} ${pad(`${r.rate.toFixed(1)}/s`, 10)} ${
    pad(`${r.queue}/${r.capacity}`, 7)
  } ${mib(r.rssBytes)}`;
}

function consoleColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 120;
  }
}

function writeAll(
  to: { writeSync(p: Uint8Array): number },
  text: string,
): void {
  const bytes = encoder.encode(text);
  let at = 0;
  while (at < bytes.length) {
    try {
      at += to.writeSync(bytes.subarray(at));
    } catch {
      return; // a closed pipe: nothing more to show
    }
  }
}
