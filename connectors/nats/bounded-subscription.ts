/**
 * A core NATS subscription whose messages wait in a queue bounded in bytes — the input of the
 * sensor job and of the serial job on core NATS. Core NATS is at-most-once and the server does
 * not slow down for us, so what does not fit is shed and counted (`onShed`), never held without
 * bound. The consumer takes chunks in arrival order and waits when the queue is dry.
 */
import type { NatsConnection, Subscription } from "nats";

export interface QueuedMessage {
  subject: string;
  data: Uint8Array;
}

export class BoundedSubscription {
  /** The subscription has ended (drained or closed) and will deliver nothing more. */
  closed = false;
  private readonly queue: QueuedMessage[] = [];
  private queuedBytes = 0;
  private waker: (() => void) | null = null;
  private readonly sub: Subscription;

  constructor(
    nc: NatsConnection,
    subject: string,
    private readonly bytesMax: number,
    onShed: (bytes: number) => void,
  ) {
    this.sub = nc.subscribe(subject, {
      callback: (_err, msg) => {
        if (this.queuedBytes + msg.data.length > this.bytesMax) {
          onShed(msg.data.length);
          return;
        }
        this.queue.push({ subject: msg.subject, data: msg.data });
        this.queuedBytes += msg.data.length;
        this.wake();
      },
    });
    void this.sub.closed.then(() => {
      this.closed = true;
      this.wake();
    });
  }

  get length(): number {
    return this.queue.length;
  }

  /** Up to `max` messages, oldest first, removed from the queue. */
  take(max: number): QueuedMessage[] {
    const chunk = this.queue.splice(0, Math.min(this.queue.length, max));
    for (const m of chunk) this.queuedBytes -= m.data.length;
    return chunk;
  }

  /** Resolves true when a message arrives (or `wake` is called), false after `timeoutMs` (none: no timeout). */
  wait(timeoutMs?: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const t =
        timeoutMs === undefined
          ? null
          : setTimeout(() => {
              this.waker = null;
              resolve(false);
            }, timeoutMs);
      this.waker = () => {
        if (t !== null) clearTimeout(t);
        this.waker = null;
        resolve(true);
      };
    });
  }

  /** Ends a `wait` now (a stop request, a periodic look). */
  wake(): void {
    this.waker?.();
  }

  /** Stops new deliveries; what the server already sent still arrives, then `closed` is set. */
  drain(): Promise<void> {
    return this.sub.drain();
  }
}
