/**
 * Where the sensor job writes one line per scored record: an NDJSON file (`linewatch run`'s
 * scores file, ISO timestamps) or NATS subjects `lw.<site>.score.<machine>.<sensor>` (epoch ms
 * and the record's seq; JSON or MessagePack). The line holds the key's fields, the reading and
 * the members of every analysis.
 */
import type { Logger } from "../core/mod.js";
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import type { NatsConnection } from "nats";
import { LineBuffer, RotatingFileSink } from "../../connectors/files/mod.js";
import { formatTimestamp } from "../../connectors/sim/mod.js";
import { formatStatistic } from "../../operators/mod.js";

/** A key as the score lines name it. */
export interface ScoreKey {
  /** Machine id, sensor type and (keyed by mode) operating mode. */
  readonly parts: readonly string[];
  /** `"machine_id":…,"sensor_type":…[,"operating_mode":…]`, built once per key. */
  readonly json: string;
}

export interface ScoreWriter {
  /** One scored record; `members` is ",a,b" (observeRecord's form). */
  write(key: ScoreKey, time: number, value: number, seq: number, members: string): void;
  /** After each pushed batch: writes out what is buffered once it is large. */
  spill(): Promise<void>;
  /** Writes out everything buffered (at each commit). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Bytes written to a file so far (0 for NATS). */
  readonly bytesWritten: number;
}

/** A file write per 256 KiB of lines: few syscalls, bounded memory. */
const SPILL_BYTES = 1 << 18;

/** The scores file: NDJSON, rotated at `fileBytesMax`. */
export class NdjsonScoreFile implements ScoreWriter {
  private readonly file: RotatingFileSink;
  private readonly lines = new LineBuffer();

  constructor(path: string, fileBytesMax: number) {
    this.file = new RotatingFileSink(path, fileBytesMax);
  }

  get bytesWritten(): number {
    return this.file.bytesWritten;
  }

  write(key: ScoreKey, time: number, value: number, _seq: number, members: string): void {
    this.lines.push(`{${key.json},"timestamp":"${formatTimestamp(time)}","value":${formatStatistic(value)}${members}}`);
  }

  async spill(): Promise<void> {
    if (this.lines.bytes > SPILL_BYTES) await this.file.write(this.lines.take());
  }

  async flush(): Promise<void> {
    if (this.lines.bytes > 0) await this.file.write(this.lines.take());
  }

  async close(): Promise<void> {
    await this.flush();
    await this.file.close();
  }
}

/** Scores published on `lw.<site>.score.<machine>.<sensor>`; `flush` waits for the server to have them. */
export class NatsScorePublisher implements ScoreWriter {
  readonly bytesWritten = 0;
  private readonly enc = new TextEncoder();

  constructor(
    private readonly nc: NatsConnection,
    private readonly site: string,
    private readonly format: "json" | "msgpack",
    private readonly log: Logger,
  ) {}

  write(key: ScoreKey, time: number, value: number, seq: number, members: string): void {
    const line = `{${key.json},"timestamp":${time},"value":${formatStatistic(value)},"seq":${seq}${members}}`;
    const data = this.format === "msgpack" ? encodeMsgpack(JSON.parse(line)) : this.enc.encode(line);
    this.nc.publish(`lw.${this.site}.score.${key.parts[0]}.${key.parts[1]}`, data);
  }

  async spill(): Promise<void> {}

  async flush(): Promise<void> {
    try {
      await this.nc.flush();
    } catch (error) {
      // Disconnected: nats.js keeps what was published in its reconnect buffer and sends it on
      // reconnect; scores on core NATS are at-most-once past that buffer.
      this.log.warn({ err: error }, "flush of published scores failed");
    }
  }

  async close(): Promise<void> {}
}
