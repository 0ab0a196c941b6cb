/**
 * Zero-copy publish-subscribe channels over iceoryx2 shared memory.
 *
 * A {@linkcode ChannelContext} owns one iceoryx2 node in one isolation (prefix
 * and root) and one Unix socket that native threads ring when a sample or
 * free space arrives: an idle subscriber costs no CPU, and waiting never
 * blocks the event loop. Publishers write RuntimeData straight into loaned
 * shared memory; subscribers get views of the sample in place.
 *
 * @module
 */
export type {
  ChannelContextOptions,
  ChannelOptions,
  PortStats,
  PublisherOptions,
  PublishOptions,
  ReceiveOptions,
} from "./options.ts";
export { ChannelContext } from "./context.ts";
export { Channel } from "./channel.ts";
export { Publisher } from "./publisher.ts";
export { Sample } from "./sample.ts";
export { Subscriber } from "./subscriber.ts";
