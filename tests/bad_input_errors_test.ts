/**
 * Answers to bad input that the reliability suite's catalogue
 * (reliability/bad_input.ts) found unnamed or badly worded, each against the
 * real runtime: the message starts with a capital and says what failed.
 */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { executor, root, settleWithin, single } from "./support/sessions.ts";
import { type NodeProcessError, ProcessSpawnError } from "../errors.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import { CHANNEL_DEFAULT_MAX_SUBSCRIBERS } from "../protocol/contracts.ts";
import { text, type TextData } from "../data/runtime_data/mod.ts";
import { MultiprocessExecutor } from "../control/executor.ts";

const nodes = {
  modules: ["bad_nodes"],
  modulePaths: [`${root}reliability/nodes`],
  printLogs: false,
};

Deno.test("a configured Python that does not exist: a capitalised message naming the key", async () => {
  await using ex = new MultiprocessExecutor({
    python: { executable: "/nonexistent/bin/python" },
  });
  await assertRejects(
    () => ex.createSession(single("bad_echo"), nodes),
    ProcessSpawnError,
    "The Python executable /nonexistent/bin/python does not exist: point python.executable at an installed interpreter",
  );
});

Deno.test("a raw sample with a corrupt header: a capitalised node error, and the next message arrives", async () => {
  await using ex = executor();
  await using session = await ex.createSession(single("bad_echo"), nodes);
  await session.initialize();
  const error = new Promise<NodeProcessError>((resolve) =>
    session.addEventListener(
      "error",
      (e) => resolve((e as CustomEvent<NodeProcessError>).detail),
      { once: true },
    )
  );
  let e: NodeProcessError;
  {
    await using ctx = await ChannelContext.create({
      isolation: session.isolation,
    });
    using ch = ctx.channel("in.in", {
      capacity: 8,
      maxSubscribers: CHANNEL_DEFAULT_MAX_SUBSCRIBERS + 1,
    });
    using pub = ch.publisher({ maxPayloadBytes: 4096 });
    pub.loan(200).fill(0xab);
    pub.send();
    // The port lives until the runner has read the sample: a reader
    // connects to a new port only when it next receives, and what a port
    // dropped before then queued for it is gone (docs/channel-protocol.md;
    // this test hung so in a CI rehearsal).
    const settled = await settleWithin(error, 20_000, "the node's error");
    assert(settled.status === "fulfilled");
    e = settled.value;
  }
  assertEquals(e.nodeId, "n");
  assert(
    e.message.startsWith(
      "Invalid message on input 'in': WireFormatError: bad_magic",
    ),
    e.message,
  );
  await session.send("in", text("after"));
  for await (const s of session.receive("out", { timeoutMs: 10_000 })) {
    assertEquals((s.data as TextData).text, "after");
    break;
  }
});
