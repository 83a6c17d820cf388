/**
 * Change notifications of the SDK 2.x adapter (2026-07-28 `subscriptions/listen`), per caller:
 * the SDK's `createMcpHandler` delivers a published change to every open listen stream; here
 * each stream is tied to the certificate that opened it, and a change reaches a caller only
 * when the policy in force lets them see what changed.
 *
 * - `toolsChanged(names)` / `promptsChanged(names)`: told only callers who may see at least
 *   one of the named tools or prompts (by name, so a tool just removed still counts for
 *   those who saw it). Without names the adapter cannot know what changed, so every
 *   subscriber is told: a list_changed carries nothing but "list again", and the new list is
 *   filtered; the one thing it gives away is that something changed. Name what changed to
 *   keep even that from callers who may see none of it.
 * - `resourcesChanged(uris)`: likewise, by the URIs the caller may read.
 * - `resourceUpdated(uri)`: only callers who may read that resource now (their subscription
 *   was decided when they opened it; the policy may have changed since).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';
import type { Identity } from '../identity/identity.js';
import type { Policy } from '../policy/compile.js';

/** The adapter's `notify`: the SDK's ServerNotifier, with what changed to decide who is told. */
export interface CallerNotifier {
  /** `notifications/tools/list_changed` to callers who may see one of `names` (every subscriber when none are named) */
  toolsChanged(names?: readonly string[]): void;
  /** `notifications/prompts/list_changed` to callers who may see one of `names` (every subscriber when none are named) */
  promptsChanged(names?: readonly string[]): void;
  /** `notifications/resources/list_changed` to callers who may read one of `uris` (every subscriber when none are named) */
  resourcesChanged(uris?: readonly string[]): void;
  /** `notifications/resources/updated` for `uri`, to callers subscribed to it who may read it */
  resourceUpdated(uri: string): void;
}

interface Listener {
  readonly identity: Identity | undefined;
  readonly listener: (event: ServerEvent) => void;
}

/** A bus whose listen streams belong to the caller of the request that opened them; `run` serves a request as that caller. */
export function callerBus(policy: () => Policy, onerror?: (error: Error) => void): { bus: ServerEventBus; notify: CallerNotifier; run<T>(identity: Identity, serve: () => T): T } {
  const caller = new AsyncLocalStorage<Identity>();
  const listeners = new Set<Listener>();
  const named = new WeakMap<ServerEvent, readonly string[]>();

  const mayHear = (identity: Identity | undefined, event: ServerEvent): boolean => {
    if (!identity) return false; // a stream nobody opened through the adapter: told nothing
    const p = policy();
    const names = named.get(event);
    switch (event.kind) {
      case 'tools_list_changed':
        return !names || names.some((name) => p.visible(identity, { kind: 'tool', name }));
      case 'prompts_list_changed':
        return !names || names.some((name) => p.visible(identity, { kind: 'prompt', name }));
      case 'resources_list_changed':
        return !names || p.filterResources(identity, names.map((uri) => ({ uri }))).length > 0;
      case 'resource_updated':
        return p.filterResources(identity, [{ uri: event.uri }]).length > 0;
    }
    return false;
  };

  const bus: ServerEventBus = {
    publish(event) {
      for (const l of [...listeners]) {
        if (!listeners.has(l) || !mayHear(l.identity, event)) continue;
        try {
          l.listener(event);
        } catch (e) {
          onerror?.(e instanceof Error ? e : new Error(String(e)));
        }
      }
    },
    subscribe(listener) {
      // called by the SDK while it serves the listen request: its caller is in the store
      const l: Listener = { identity: caller.getStore(), listener };
      listeners.add(l);
      return () => void listeners.delete(l);
    },
  };

  const publish = (event: ServerEvent, names?: readonly string[]) => {
    if (names) named.set(event, [...names]);
    bus.publish(event);
  };
  const notify: CallerNotifier = {
    toolsChanged: (names) => publish({ kind: 'tools_list_changed' }, names),
    promptsChanged: (names) => publish({ kind: 'prompts_list_changed' }, names),
    resourcesChanged: (uris) => publish({ kind: 'resources_list_changed' }, uris),
    resourceUpdated: (uri) => publish({ kind: 'resource_updated', uri }),
  };
  return { bus, notify, run: (identity, serve) => caller.run(identity, serve) };
}
