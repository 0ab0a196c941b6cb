/**
 * The sentences the tests and the benchmark synthesise (all in the domain of
 * `intents.json`).
 *
 * @module
 */

/**
 * Twelve questions for the word error rate test (and, but for the story, the
 * benchmark).
 *
 * @example
 * ```ts
 * import { SENTENCES } from "./sentences.ts";
 * console.log(SENTENCES.length); // 12
 * ```
 */
export const SENTENCES: readonly string[] = [
  "What is the weather like today?",
  "Please turn off the lights in the kitchen.",
  "Can you tell me the time?",
  "Set an alarm for seven in the morning.",
  "Play some music for me.",
  "Tell me a joke.",
  "Add milk and bread to my shopping list.",
  "What is in the news today?",
  "Thank you very much for your help.",
  "Good morning, how are you?",
  "Will it rain tomorrow afternoon?",
  "I would like to hear a story.",
];
