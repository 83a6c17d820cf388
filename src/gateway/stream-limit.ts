/**
 * At most {@link MAX_STREAMS_PER_CERT} streams open per certificate, GET streams and 2026-07-28
 * `subscriptions/listen` streams together: such a stream stays open as long as the client wants,
 * so without a cap one client could hold the stream pool.
 */
import type { ServerResponse } from 'node:http';

export const MAX_STREAMS_PER_CERT = 8;

export class StreamLimit {
  readonly #open = new Map<string, number>();

  /** Counts a stream for this certificate until `res` closes; false (nothing counted) when it already has the maximum. */
  tryOpen(fingerprint: string, res: ServerResponse): boolean {
    const open = this.#open.get(fingerprint) ?? 0;
    if (open >= MAX_STREAMS_PER_CERT) return false;
    this.#open.set(fingerprint, open + 1);
    res.once('close', () => {
      const n = (this.#open.get(fingerprint) ?? 1) - 1;
      if (n > 0) this.#open.set(fingerprint, n);
      else this.#open.delete(fingerprint);
    });
    return true;
  }
}
