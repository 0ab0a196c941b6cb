/**
 * Pre-warmed sessions: {@linkcode Prewarm} keeps a number of sessions of one
 * pipeline spawned and initialised in the background, so that
 * `createSession` of that pipeline hands one out at once and
 * `initialize()` resolves at once. Made by `MultiprocessExecutor.prewarm`.
 *
 * @module
 */
import { SessionClosedError } from "../errors.ts";
import type { Session } from "./session.ts";

/** Options of `MultiprocessExecutor.prewarm`. */
export interface PrewarmOptions {
  /**
   * How many initialised spares to keep ready. Each taken one is replaced at
   * once, in the background.
   * @default {1}
   */
  sessions?: number;
  /**
   * Python modules that register the pipeline's node types (as for
   * `createSession`: a `createSession` takes a spare only when its
   * `modules` and `modulePaths` are the same).
   * @default {[]}
   */
  modules?: string[];
  /**
   * Folders to import those modules from.
   * @default {[]}
   */
  modulePaths?: string[];
  /**
   * Print a spare's node output to stderr as `[node] line` until it is taken
   * (from then on the taker's `printLogs` applies).
   * @default {true}
   */
  printLogs?: boolean;
  /**
   * Called when a spare fails to start or fails while it waits (also
   * dispatched as `error` events of the {@linkcode Prewarm}). A failure no
   * callback or listener hears is printed to stderr: never silent.
   */
  onError?: (error: Error) => void;
  /**
   * After this many failures in a row the pool stops replacing spares
   * (`whenReady()` then rejects with the last failure and `createSession`
   * starts cold); a spare that reaches ready resets the count.
   * @default {3}
   */
  maxConsecutiveFailures?: number;
}

/** @internal What the executor gives a pool: how to start one spare. */
export interface SpareFactory {
  /** Spawns and initialises one session, not yet visible as the user's. */
  start(): Promise<Session>;
  /** False once the program is exiting by a signal or the executor closed. */
  canStart(): boolean;
  /** Whether a ready spare still matches its modules' sources. */
  stillValid(spare: Session): Promise<boolean>;
}

/**
 * A pool of pre-warmed sessions of one pipeline. `createSession` of the same
 * pipeline (same `modules` and `modulePaths`) takes a ready spare, whose
 * `initialize()` has already resolved, and the pool starts a replacement.
 * Spares are sessions of the executor: `executor.close()`, SIGINT/SIGTERM and
 * the death of the program end them as they end any session. Dispatches
 * `error` events (`detail` is the failure of a spare).
 *
 * @example
 * ```ts ignore
 * import { MultiprocessExecutor, Pipeline } from "@remotemedia/multiprocess";
 * const executor = new MultiprocessExecutor();
 * const pipeline = new Pipeline().addNode("echo", "e").addInput("in", "e", "in").addOutput("out", "e", "out");
 * const options = { modules: ["demo_nodes"], modulePaths: ["examples/nodes"] };
 * await using warm = await executor.prewarm(pipeline, { sessions: 2, ...options });
 * await warm.whenReady();
 * const session = await executor.createSession(pipeline, options); // a spare: milliseconds
 * await session.initialize(); // resolves at once
 * ```
 */
export class Prewarm extends EventTarget implements AsyncDisposable {
  /** How many spares the pool keeps ready. */
  readonly sessions: number;
  readonly #factory: SpareFactory;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #maxFailures: number;
  readonly #spares: Session[] = [];
  readonly #starting = new Set<Promise<void>>();
  readonly #waiters = new Set<PromiseWithResolvers<void>>();
  readonly #onClose: () => void;
  #failuresInRow = 0;
  #gaveUp: Error | undefined;
  #closed = false;
  #errorListeners = 0;

  /** @internal use `MultiprocessExecutor.prewarm`. */
  constructor(
    factory: SpareFactory,
    options: PrewarmOptions,
    onClose: () => void,
  ) {
    super();
    this.sessions = options.sessions ?? 1;
    this.#factory = factory;
    this.#onError = options.onError;
    this.#maxFailures = options.maxConsecutiveFailures ?? 3;
    this.#onClose = onClose;
    this.#fill();
  }

  /**
   * Adds an event listener; `error` listeners count as hearing spare failures.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget.addEventListener`.
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    if (type === "error" && listener) this.#errorListeners++;
  }

  /**
   * Removes an event listener.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget.removeEventListener`.
   */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
    if (type === "error" && listener) {
      this.#errorListeners = Math.max(0, this.#errorListeners - 1);
    }
  }

  /** Spares ready to be taken now. */
  get ready(): number {
    return this.#spares.length;
  }

  /** Spares being spawned and initialised now. */
  get starting(): number {
    return this.#starting.size;
  }

  /** The failure after which the pool stopped replacing spares, if any. */
  get failure(): Error | undefined {
    return this.#gaveUp;
  }

  /** True once {@linkcode Prewarm.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Resolves when `sessions` spares are ready.
   *
   * @returns When the pool is full.
   * @throws The last spare failure when the pool gave up, or
   * `SessionClosedError` when the pool closed first.
   *
   * @example
   * ```ts ignore
   * await warm.whenReady();
   * ```
   */
  whenReady(): Promise<void> {
    if (this.#gaveUp) return Promise.reject(this.#gaveUp);
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#spares.length >= this.sessions) return Promise.resolve();
    const waiter = Promise.withResolvers<void>();
    this.#waiters.add(waiter);
    return waiter.promise;
  }

  /**
   * @internal A ready spare, or undefined; starts its replacement. A spare
   * whose modules' sources changed since it was listed is closed instead,
   * with every other spare: they run the old code.
   */
  async take(): Promise<Session | undefined> {
    let spare = this.#spares.shift();
    while (spare?.closed) spare = this.#spares.shift(); // ended by a signal
    if (!spare) {
      this.#fill();
      return undefined;
    }
    if (!await this.#factory.stillValid(spare)) {
      const stale = [spare, ...this.#spares.splice(0)];
      for (const s of stale) s.close().catch(() => {});
      this.#fill();
      return undefined;
    }
    this.#fill();
    return spare;
  }

  /**
   * Stops replacing spares and closes the spares not taken (taken sessions
   * are the takers' to close).
   *
   * @example
   * ```ts ignore
   * await warm.close();
   * ```
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#onClose();
      this.#settleWaiters(this.#closedError());
    }
    while (this.#starting.size > 0 || this.#spares.length > 0) {
      await Promise.all([
        ...this.#starting,
        ...this.#spares.splice(0).map((s) => s.close().catch(() => {})),
      ]);
    }
  }

  /** Same as {@linkcode Prewarm.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #closedError(): Error {
    return new SessionClosedError("The pre-warmed session pool is closed");
  }

  #fill(): void {
    while (
      !this.#closed && !this.#gaveUp && this.#factory.canStart() &&
      this.#spares.length + this.#starting.size < this.sessions
    ) {
      const task: Promise<void> = this.#startOne().finally(() => {
        this.#starting.delete(task);
        this.#fill(); // a failure, or a spare that failed meanwhile
      });
      this.#starting.add(task);
    }
  }

  async #startOne(): Promise<void> {
    let session: Session;
    try {
      session = await this.#factory.start();
    } catch (e) {
      this.#failed(e as Error);
      return;
    }
    if (this.#closed || !this.#factory.canStart()) {
      await session.close().catch(() => {});
      return;
    }
    this.#failuresInRow = 0;
    this.#spares.push(session);
    // A spare that fails while it waits (a crash) is reported and replaced.
    session.addEventListener("failed", (event) => {
      const at = this.#spares.indexOf(session);
      if (at < 0) return; // taken: its taker hears it
      this.#spares.splice(at, 1);
      this.#failed((event as CustomEvent<Error>).detail);
    }, { once: true });
    if (this.#spares.length >= this.sessions) this.#settleWaiters();
  }

  #failed(error: Error): void {
    if (this.#closed) return;
    this.#failuresInRow++;
    const heard = this.#onError !== undefined || this.#errorListeners > 0;
    try {
      this.#onError?.(error);
    } catch (e) {
      console.error(`onError threw: ${e}`);
    }
    this.dispatchEvent(new CustomEvent<Error>("error", { detail: error }));
    if (!heard) {
      console.error(
        `A pre-warmed session failed (${error.name}): ${error.message}`,
      );
    }
    if (this.#failuresInRow >= this.#maxFailures) {
      this.#gaveUp = error;
      console.error(
        `The pre-warmed session pool stopped replacing spares after ${this.#failuresInRow} failures in a row; createSession starts sessions cold`,
      );
      this.#settleWaiters(error);
      return;
    }
    this.#fill(); // a spare failing while it waits (failing at start: see #fill)
  }

  #settleWaiters(error?: Error): void {
    for (const waiter of this.#waiters) {
      if (error) waiter.reject(error);
      else waiter.resolve();
    }
    this.#waiters.clear();
  }
}
