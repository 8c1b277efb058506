/**
 * A message's subject as the bytes it arrived in. nats.js 2.29 keeps them at `msg._msg.subject` (a
 * Uint8Array view of the read buffer, set by nats-base-client/parser.js `processMsgArgs`) and
 * decodes `msg.subject` from them only when asked; a JetStream message (jetstream/jsmsg.js
 * `JsMsgImpl`) wraps its message as `msg`, outside the JsMsg interface. Null when a nats.js
 * version keeps them elsewhere: callers then take the generic path.
 */
import type { JsMsg, Msg } from "nats";

export function rawSubject(msg: Msg): Uint8Array | null {
  const raw = (msg as unknown as { _msg?: { subject?: unknown } })._msg?.subject;
  return raw instanceof Uint8Array ? raw : null;
}

/** {@link rawSubject} of a JetStream message. */
export function rawJetStreamSubject(m: JsMsg): Uint8Array | null {
  const msg = (m as unknown as { msg?: Msg }).msg;
  return msg === undefined ? null : rawSubject(msg);
}

/** A JetStream message's stream and delivery sequences (what a pull reader needs of `info`). */
export interface JetStreamSequences {
  stream: number;
  delivery: number;
}

const DOT = 0x2e;
const ZERO = 0x30;

/**
 * `m.seq` and `m.info.deliverySequence` read from the reply subject's bytes, into `out`: nats.js
 * decodes the reply to a string and splits it into a dozen strings per message (jsmsg.js
 * `parseInfo`: with the decode, about 5 % of an ingest worker's busy time on JetStream in a
 * profile, and garbage for the collector). The ack subject is
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<delivery seq>.<ts>.<pending>` (9 tokens)
 * or, with a domain and account hash, 11–12 tokens with the sequences at 7 and 8 — as parseInfo
 * reads it (stream and consumer names hold no dot). Anything else (no raw reply, another shape)
 * falls back to nats.js's own parse.
 */
export function jetStreamSequences(m: JsMsg, out: JetStreamSequences): void {
  const reply = (m as unknown as { msg?: { _msg?: { reply?: unknown } } }).msg?._msg?.reply;
  if (reply instanceof Uint8Array && readAckSequences(reply, out)) return;
  out.stream = m.seq;
  out.delivery = m.info.deliverySequence;
}

/** The sequences of a JetStream ack subject's bytes into `out` (see {@link jetStreamSequences}); false when it has another shape. */
export function readAckSequences(b: Uint8Array, out: JetStreamSequences): boolean {
  let dots = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === DOT) dots++;
  const at = dots === 8 ? 5 : dots === 10 || dots === 11 ? 7 : -1;
  // "$JS.ACK." — the shape parseInfo accepts.
  if (at < 0 || b[0] !== 0x24 || b[1] !== 0x4a || b[2] !== 0x53 || b[3] !== DOT || b[4] !== 0x41 || b[5] !== 0x43 || b[6] !== 0x4b)
    return false;
  let token = 0;
  let i = 0;
  while (token < at) if (b[i++] === DOT) token++;
  const stream = digits(b, i);
  if (stream < 0) return false;
  while (b[i] !== DOT) i++;
  const delivery = digits(b, i + 1);
  if (delivery < 0) return false;
  out.stream = stream;
  out.delivery = delivery;
  return true;
}

/** The decimal number of the token starting at `from` (up to a dot or the end); -1 when it is not one. */
function digits(b: Uint8Array, from: number): number {
  let n = 0;
  let i = from;
  for (; i < b.length && b[i] !== DOT; i++) {
    const d = b[i] - ZERO;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return i === from || n > Number.MAX_SAFE_INTEGER ? -1 : n;
}
