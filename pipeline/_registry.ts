/**
 * Lookups in a node type registry, which is a `Map` or a plain record.
 *
 * @module
 */

import type { NodeRegistry, NodeTypeInfo } from "./schema.ts";

/**
 * The ports of a node type.
 *
 * @param registry The registry.
 * @param type The node type.
 * @returns Its ports, or `undefined` when the type is not registered.
 */
export function lookupType(
  registry: NodeRegistry,
  type: string,
): NodeTypeInfo | undefined {
  if (registry instanceof Map) return registry.get(type);
  const rec = registry as Readonly<Record<string, NodeTypeInfo>>;
  return Object.hasOwn(rec, type) ? rec[type] : undefined;
}

/**
 * The registered type names.
 *
 * @param registry The registry.
 * @returns The names, in registry order.
 */
export function registryTypes(registry: NodeRegistry): string[] {
  return registry instanceof Map
    ? [...registry.keys()]
    : Object.keys(registry as Record<string, NodeTypeInfo>);
}
