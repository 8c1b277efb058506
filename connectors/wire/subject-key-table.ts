/**
 * Sensor subjects, as the bytes they arrive in, to small key ids — for the ingest hot path, which
 * then needs neither the subject's string nor a parse per message. nats.js 2.29 keeps a message's
 * raw subject bytes at `msg._msg.subject` (a Uint8Array view of the read buffer, set by
 * nats-base-client/parser.js `processMsgArgs`) and decodes `msg.subject` from them lazily with a
 * TextDecoder (nats-base-client/msg.js); a JetStream message wraps that message as `jsMsg.msg`.
 *
 * A subject seen the first time is decoded the way nats.js decodes it and validated once with
 * {@link parseSubject} — after {@link unpartitioned}, so `lw.<site>.p.<k>.sensor.…` and
 * `lw.<site>.sensor.…` get the same id — and its strings are made then; later sightings hash and
 * compare bytes only. Ids are per (machine, sensor) in first-seen order. Subjects that are not
 * sensor subjects are not kept, so garbage cannot fill the table: the caller sends them down the
 * generic path, which dead-letters them. At most `capacity` distinct subjects are kept; past that
 * a new one is {@link SubjectKeyTable.FULL}, also for the generic path.
 */
import { ByteKeyTable, hashBytes } from "./byte-table.js";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from "./decode-limits.js";
import { SubjectError } from "../errors.js";
import { parseSubject, unpartitioned } from "./subjects.js";

/** Distinct subjects one table keeps by default. */
export const SUBJECT_KEYS_MAX = 65_536;

/** nats.js's own decoder settings (nats-base-client/encoders.js `TD`). */
const NATS_TEXT = new TextDecoder();

export class SubjectKeyTable {
  /** {@link idOf}: not a valid sensor subject (not kept). */
  static readonly INVALID = -1;
  /** {@link idOf}: a valid sensor subject, not kept because the table is full. */
  static readonly FULL = -2;

  private readonly table: ByteKeyTable;
  /** Key id of each kept subject (ByteKeyTable entry). */
  private keyOfEntry = new Int32Array(64);
  private readonly ids = new Map<string, number>();
  private readonly machines: string[] = [];
  private readonly sensors: Array<string | undefined> = [];
  private readonly engineKeys: Array<string | undefined> = [];

  constructor(
    private readonly limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
    readonly capacity = SUBJECT_KEYS_MAX,
  ) {
    this.table = new ByteKeyTable(capacity);
  }

  /** The key id of the subject `bytes[start, end)`, or {@link SubjectKeyTable.INVALID} / {@link SubjectKeyTable.FULL}. */
  idOf(bytes: Uint8Array, start = 0, end = bytes.length): number {
    const hash = hashBytes(bytes, start, end);
    const e = this.table.find(bytes, start, end, hash);
    if (e >= 0) return this.keyOfEntry[e];
    return this.add(bytes, start, end, hash);
  }

  /** The subject's `machine_id` token. */
  machine(id: number): string {
    return this.machines[id];
  }

  /** The subject's `sensor_type` token; undefined on a machine's subject (`lw.<site>.sensor.<machine>`). */
  sensor(id: number): string | undefined {
    return this.sensors[id];
  }

  /** The engine key `<machine_id>/<sensor_type>` (as NatsInput names keys); undefined on a machine's subject. */
  engineKey(id: number): string | undefined {
    return this.engineKeys[id];
  }

  /** Distinct keys (ids 0 … keys − 1). */
  get keys(): number {
    return this.machines.length;
  }

  /** Distinct subjects kept (a partitioned and an unpartitioned subject of one key are two). */
  get subjects(): number {
    return this.table.size;
  }

  private add(bytes: Uint8Array, start: number, end: number, hash: number): number {
    let parsed: ReturnType<typeof parseSubject>;
    try {
      parsed = parseSubject(unpartitioned(NATS_TEXT.decode(bytes.subarray(start, end))), this.limits);
    } catch (e) {
      if (e instanceof SubjectError) return SubjectKeyTable.INVALID;
      throw e;
    }
    if (parsed.kind !== "sensor") return SubjectKeyTable.INVALID;
    const e = this.table.insert(bytes, start, end, hash);
    if (e < 0) return SubjectKeyTable.FULL;
    // Tokens never hold a control character, so NUL separates them unambiguously.
    const identity = `${parsed.machineId}\u0000${parsed.sensorType ?? ""}`;
    let id = this.ids.get(identity);
    if (id === undefined) {
      id = this.machines.length;
      this.ids.set(identity, id);
      this.machines.push(parsed.machineId);
      this.sensors.push(parsed.sensorType);
      this.engineKeys.push(parsed.sensorType === undefined ? undefined : `${parsed.machineId}/${parsed.sensorType}`);
    }
    if (e === this.keyOfEntry.length) {
      const grown = new Int32Array(2 * e);
      grown.set(this.keyOfEntry);
      this.keyOfEntry = grown;
    }
    this.keyOfEntry[e] = id;
    return id;
  }
}
