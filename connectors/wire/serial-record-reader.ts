/**
 * A reader specialised to the MessagePack serial event (serial-codec.ts, "Field rules"), for the
 * serial job's hot path: one pass over the bytes, nothing allocated, the times into a reused
 * {@link SerialRecordView} and the text fields as byte ranges of the message (which the serial
 * encoder copies straight into the record's payload).
 *
 * Contract: `read` returns true only for a message that `decodeSerialRecord(bytes, { limits,
 * subject })` accepts — on a serial subject whose line is `line` — with the same times (bit for
 * bit, -0 included), text ranges whose bytes are the decoded strings (ASCII, so byte = character),
 * and `batchClose` true exactly when `event_type` is one of BATCH_CLOSE_EVENT_TYPES. Whenever
 * acceptance is not proved cheaply it returns false and the caller runs the generic decoder, which
 * yields the event or the exact DecodeError — every rejection, and its reason, stays the generic
 * decoder's.
 *
 * The fast path takes (anything else is false):
 * - a map (fixmap, map16, map32) of at most `mapEntriesMax` entries whose keys are among the eight
 *   schema names, each at most once (an unknown or repeated key is false: the generic decoder
 *   ignores the one and lets the last of the other win);
 * - `serial_number`, `gtin`, `batch_number`: strings of ASCII bytes (empty allowed);
 * - `machine_id`: a string equal to `line` (ASCII);
 * - `operator_id`, `event_type`: nil (absent) or an ASCII string;
 * - `production_timestamp` (required), `received_timestamp` (nil: absent): any MessagePack int or
 *   float within ±8.64e15, a `YYYY-MM-DDTHH:MM:SS.sssZ` string with in-range fields, or the
 *   timestamp extension (msgpack-fields.ts);
 * - every string within `stringBytesMax`, the message within `recordBytesMax` and ending exactly
 *   after the map.
 * Non-ASCII text (valid or not as UTF-8) is the generic decoder's: it alone decides what a
 * non-ASCII byte sequence becomes as a string.
 */
import { BATCH_CLOSE_EVENT_TYPES } from "../../operators/serial/mod.js";
import { MsgpackFieldReader, sameAscii } from "./msgpack-fields.js";

/** What {@link SerialRecordReader.read} fills: times, text as byte ranges of the message (ASCII), the batch-close mark. */
export class SerialRecordView {
  /** `production_timestamp`, epoch ms. */
  production = 0;
  /** `received_timestamp`, epoch ms; NaN when absent. */
  received = Number.NaN;
  serialStart = 0;
  serialLength = 0;
  gtinStart = 0;
  gtinLength = 0;
  batchStart = 0;
  batchLength = 0;
  machineStart = 0;
  machineLength = 0;
  /** −1: no `operator_id` (the event's operator is the empty string). */
  operatorStart = -1;
  operatorLength = 0;
  /** `event_type` is a batch-close type. */
  batchClose = false;
}

const FIELD_NAMES = [
  "serial_number",
  "gtin",
  "batch_number",
  "production_timestamp",
  "machine_id",
  "operator_id",
  "received_timestamp",
  "event_type",
];
const FIELD_BYTES = FIELD_NAMES.map((n) => new TextEncoder().encode(n));
/** Each name's bytes as big-endian 32-bit words (the whole ones), for comparing four bytes a step. */
const FIELD_WORDS = FIELD_BYTES.map((b) => {
  const words = new Uint32Array(b.length >>> 2);
  for (let w = 0; w < words.length; w++) words[w] = ((b[4 * w] << 24) | (b[4 * w + 1] << 16) | (b[4 * w + 2] << 8) | b[4 * w + 3]) >>> 0;
  return words;
});
const SERIAL = 0;
const GTIN = 1;
const BATCH = 2;
const PRODUCTION = 3;
const MACHINE = 4;
const OPERATOR = 5;
const RECEIVED = 6;
const EVENT_TYPE = 7;
const REQUIRED = (1 << SERIAL) | (1 << GTIN) | (1 << BATCH) | (1 << PRODUCTION) | (1 << MACHINE);

export class SerialRecordReader extends MsgpackFieldReader {
  /**
   * A view of the message's buffer, for reading four bytes a step (the name comparisons, the
   * ASCII checks); made once per buffer — a client hands over many messages of one read as views
   * of its buffer. `at`: the message's offset in it.
   */
  private words: DataView = new DataView(new ArrayBuffer(0));
  /** The buffer `words` views (a field: reading a DataView's `buffer` per message costs more than the compare). */
  private wordsBuffer: ArrayBufferLike = this.words.buffer;
  private at = 0;
  /** The layout of the last message walked whole and accepted (serial events of one source usually share it). */
  private readonly layout = new MessageLayout();

  /**
   * Reads `bytes` as a serial event that arrived on the serial subject of line `line` (the token
   * parseSubject gave). True: `out` holds the event. False: not proved valid — run the generic
   * decoder; `out` is then unspecified.
   */
  read(bytes: Uint8Array, line: string, out: SerialRecordView): boolean {
    if (!this.begin(bytes)) return false;
    const buffer = bytes.buffer;
    if (buffer !== this.wordsBuffer) {
      this.words = new DataView(buffer);
      this.wordsBuffer = buffer;
    }
    this.at = bytes.byteOffset;
    out.received = Number.NaN;
    out.operatorStart = -1;
    out.operatorLength = 0;
    out.batchClose = false;
    if (bytes.length === this.layout.length) {
      const taken = this.readAsLayout(bytes, line, out);
      if (taken !== LAYOUT_DIFFERS) return taken === LAYOUT_READ;
    }
    return this.readWhole(bytes, line, out);
  }

  /** {@link read} walking every key: the message's layout becomes the one the next message is compared with. */
  private readWhole(bytes: Uint8Array, line: string, out: SerialRecordView): boolean {
    const entries = this.mapHeader(bytes);
    if (entries < 0 || entries > this.limits.mapEntriesMax) return false;
    const layout = this.layout;
    // Its positions are overwritten as this message is walked: kept again only if it is accepted.
    layout.length = -1;
    let seen = 0;
    for (let i = 0; i < entries; i++) {
      if (!this.str(bytes)) return false;
      const field = this.fieldOf(bytes, this.sStart, this.sLength);
      if (field < 0 || (seen & (1 << field)) !== 0) return false;
      seen |= 1 << field;
      layout.fields[i] = field;
      layout.valueStart[i] = this.p;
      if (!this.field(bytes, field, line, out)) return false;
      layout.valueEnd[i] = this.p;
    }
    if (this.p !== bytes.length || (seen & REQUIRED) !== REQUIRED) return false;
    layout.keep(bytes, entries);
    return true;
  }

  /**
   * {@link read} for a message of the remembered layout's length: where its bytes before each
   * value (the map header, each key with its string header) are the layout's — so a whole walk
   * would meet the same keys at the same places — only the values are read, each by the same
   * `field` a whole walk calls at that place, so they are checked exactly as it checks them (a
   * value the walk would refuse is refused). LAYOUT_DIFFERS: a key's bytes differ, or a value ends
   * elsewhere than the layout's (a string of another length, a number of another width): walk it whole.
   */
  private readAsLayout(bytes: Uint8Array, line: string, out: SerialRecordView): number {
    const layout = this.layout;
    const words = this.words;
    const at = this.at;
    const checkAt = layout.checkAt;
    const checkWord = layout.checkWord;
    let c = 0;
    for (let i = 0; i < layout.entries; i++) {
      // The structure before value i, a word at a time (keep: runs of at least four bytes, covered by whole words).
      for (const end = layout.checksEnd[i]; c < end; c++) if (words.getInt32(at + checkAt[c], true) !== checkWord[c]) return LAYOUT_DIFFERS;
      this.p = layout.valueStart[i];
      if (!this.field(bytes, layout.fields[i], line, out)) return LAYOUT_REFUSED;
      if (this.p !== layout.valueEnd[i]) return LAYOUT_DIFFERS;
    }
    return LAYOUT_READ;
  }

  private field(bytes: Uint8Array, field: number, line: string, out: SerialRecordView): boolean {
    switch (field) {
      case SERIAL:
        if (!this.ascii(bytes)) return false;
        out.serialStart = this.sStart;
        out.serialLength = this.sLength;
        return true;
      case GTIN:
        if (!this.ascii(bytes)) return false;
        out.gtinStart = this.sStart;
        out.gtinLength = this.sLength;
        return true;
      case BATCH:
        if (!this.ascii(bytes)) return false;
        out.batchStart = this.sStart;
        out.batchLength = this.sLength;
        return true;
      case PRODUCTION:
        if (!this.time(bytes)) return false;
        out.production = this.num;
        return true;
      case MACHINE:
        if (!this.str(bytes) || !sameAscii(bytes, this.sStart, this.sLength, line)) return false;
        out.machineStart = this.sStart;
        out.machineLength = this.sLength;
        return true;
      case OPERATOR:
        if (this.nil(bytes)) return true;
        if (!this.ascii(bytes)) return false;
        out.operatorStart = this.sStart;
        out.operatorLength = this.sLength;
        return true;
      case RECEIVED:
        if (this.nil(bytes)) return true;
        if (!this.time(bytes)) return false;
        out.received = this.num;
        return true;
      default: // EVENT_TYPE
        if (this.nil(bytes)) return true;
        if (!this.ascii(bytes)) return false;
        out.batchClose = false;
        for (const t of BATCH_CLOSE_EVENT_TYPES) if (sameAscii(bytes, this.sStart, this.sLength, t)) out.batchClose = true;
        return true;
    }
  }

  /** A nil value (an absent optional field): consumed. */
  private nil(bytes: Uint8Array): boolean {
    if (this.p < this.end && bytes[this.p] === 0xc0) {
      this.p++;
      return true;
    }
    return false;
  }

  /** A string of ASCII bytes only. */
  private ascii(bytes: Uint8Array): boolean {
    if (!this.str(bytes)) return false;
    const start = this.sStart;
    const length = this.sLength;
    const words = this.words;
    const at = this.at + start;
    let any = 0;
    let i = 0;
    for (; i + 4 <= length; i += 4) any |= words.getUint32(at + i);
    for (; i < length; i++) any |= bytes[start + i];
    return (any & 0x80808080) === 0;
  }

  /** Which schema field a key's bytes name, or -1: the candidate of that length (two share 10, told apart by the first byte), compared in full. */
  private fieldOf(bytes: Uint8Array, start: number, length: number): number {
    let f: number;
    switch (length) {
      case 4:
        f = GTIN;
        break;
      case 10:
        f = bytes[start] === 0x6d ? MACHINE : EVENT_TYPE;
        break;
      case 11:
        f = OPERATOR;
        break;
      case 12:
        f = BATCH;
        break;
      case 13:
        f = SERIAL;
        break;
      case 18:
        f = RECEIVED;
        break;
      case 20:
        f = PRODUCTION;
        break;
      default:
        return -1;
    }
    const words = FIELD_WORDS[f];
    const at = this.at + start;
    for (let w = 0; w < words.length; w++) if (this.words.getUint32(at + 4 * w) !== words[w]) return -1;
    const name = FIELD_BYTES[f];
    for (let i = 4 * words.length; i < length; i++) if (bytes[start + i] !== name[i]) return -1;
    return f;
  }
}

/** readAsLayout's outcomes. */
const LAYOUT_READ = 0;
const LAYOUT_REFUSED = 1;
const LAYOUT_DIFFERS = 2;
/** Messages longer than this leave no layout (its copy is bounded). */
const LAYOUT_BYTES_MAX = 512;

/**
 * Where an accepted message had its keys and values: entry i's value at [valueStart[i],
 * valueEnd[i]) is field fields[i]; everything before a value and after the previous one (the map
 * header, the key and its string header) is structure, kept as the little-endian 32-bit words that
 * cover it — the words at from, from + 4, … and, when the run's length is not a multiple of four,
 * one more ending at its last byte (overlapping the one before, never reaching into a value):
 * checkAt[c] where word c starts, checkWord[c] its value, entry i's words up to checksEnd[i].
 * Every run is at least five bytes in a message the reader takes (a key's string header and a
 * name of four bytes or more); a message with a shorter one leaves no layout. Bounded: at most
 * 16 entries (a message the reader takes has each of the eight fields at most once) and
 * LAYOUT_BYTES_MAX bytes.
 */
class MessageLayout {
  /** The message's length; -1: no layout. */
  length = -1;
  entries = 0;
  readonly fields = new Int32Array(16);
  readonly valueStart = new Int32Array(16);
  readonly valueEnd = new Int32Array(16);
  readonly checksEnd = new Int32Array(16);
  /** At most a word per four bytes of the message, plus one per run. */
  readonly checkAt = new Int32Array(LAYOUT_BYTES_MAX / 4 + 16);
  readonly checkWord = new Int32Array(LAYOUT_BYTES_MAX / 4 + 16);

  /** Keeps `message`'s layout (its positions were written into fields, valueStart and valueEnd as it was walked). */
  keep(message: Uint8Array, entries: number): void {
    this.length = -1;
    if (message.length > LAYOUT_BYTES_MAX) return;
    let c = 0;
    let from = 0;
    for (let i = 0; i < entries; i++) {
      const to = this.valueStart[i];
      if (to - from < 4) return;
      for (let j = from; j + 4 <= to; j += 4) c = this.check(message, c, j);
      if ((to - from) % 4 !== 0) c = this.check(message, c, to - 4);
      this.checksEnd[i] = c;
      from = this.valueEnd[i];
    }
    this.entries = entries;
    this.length = message.length;
  }

  /** Word c: the message's four bytes at `j`, little-endian (as DataView.getInt32(…, true) reads them). */
  private check(message: Uint8Array, c: number, j: number): number {
    this.checkAt[c] = j;
    this.checkWord[c] = message[j] | (message[j + 1] << 8) | (message[j + 2] << 16) | (message[j + 3] << 24);
    return c + 1;
  }
}
