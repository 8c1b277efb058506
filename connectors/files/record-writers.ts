/**
 * Writers of sensor records to a Node Writable, as NDJSON or CSV, with backpressure.
 *
 * Text is gathered into chunks of at most `bufferCharsMax` characters before it reaches the
 * stream, because one `stream.write()` per record costs more than formatting the record; when
 * the stream's own buffer is full (`write()` returned false) the next flush waits for 'drain'.
 * So at most one chunk plus the stream's highWaterMark is ever held in memory.
 *
 * Numbers: `sensor_value` is written rounded to `significantDigits` significant digits (6 by
 * default) so files stay compact; the columnar path keeps full precision. A non-finite value is
 * written as `null` in NDJSON and as an empty field in CSV.
 */
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { LinewatchError } from "../../engine/core/mod.js";
import type { SensorRecord } from "../sim/mod.js";

export const RECORD_FORMATS = ["ndjson", "csv"] as const;
export type RecordFormat = (typeof RECORD_FORMATS)[number];

/** Column order of CSV output, which is also the field order of NDJSON output. */
export const SENSOR_RECORD_FIELDS = [
  "machine_id",
  "timestamp",
  "sensor_type",
  "sensor_value",
  "sensor_unit",
  "operating_mode",
  "work_order_id",
] as const satisfies readonly (keyof SensorRecord)[];

export const CSV_HEADER = SENSOR_RECORD_FIELDS.join(",");

export interface RecordWriterOptions {
  /** Significant digits of `sensor_value` in the text (1–17). */
  significantDigits: number;
  /** Characters gathered before a write to the stream. */
  bufferCharsMax: number;
  /** End the stream in `end()`; false for process.stdout, which must stay open. */
  endStream: boolean;
  /** CSV only: write the header line first. */
  header: boolean;
}

export const DEFAULT_RECORD_WRITER_OPTIONS: Readonly<RecordWriterOptions> = Object.freeze({
  significantDigits: 6,
  bufferCharsMax: 64 * 1024,
  endStream: true,
  header: true,
});

/** A sink of records; `write` resolves when the record may be reused and the caller may write again. */
export interface RecordWriter {
  readonly format: RecordFormat;
  readonly recordsWritten: number;
  write(record: SensorRecord): Promise<void>;
  /** Hands buffered text to the stream (waiting for 'drain' if needed). */
  flush(): Promise<void>;
  /** Flushes, then ends the stream (if `endStream`) and waits until it has finished. */
  end(): Promise<void>;
}

/** Thrown by a writer used after `end()`, or after its stream failed (`cause` holds the stream's error). */
export class RecordWriterClosedError extends LinewatchError {}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Buffered, backpressure-aware text output to one Writable. Also used on its own for other
 * line-oriented outputs (the simulator's label file).
 */
export class TextStreamWriter {
  private readonly stream: Writable;
  private readonly bufferCharsMax: number;
  private readonly endStream: boolean;
  private buffer = "";
  private failure: Error | undefined;
  private ended = false;

  constructor(stream: Writable, options: Partial<Pick<RecordWriterOptions, "bufferCharsMax" | "endStream">> = {}) {
    this.stream = stream;
    this.bufferCharsMax = options.bufferCharsMax ?? DEFAULT_RECORD_WRITER_OPTIONS.bufferCharsMax;
    this.endStream = options.endStream ?? DEFAULT_RECORD_WRITER_OPTIONS.endStream;
    if (!Number.isSafeInteger(this.bufferCharsMax) || this.bufferCharsMax < 1) {
      throw new RangeError(`bufferCharsMax must be an integer ≥ 1, got ${this.bufferCharsMax}`);
    }
    // Keep a listener for the writer's whole life: an 'error' with no listener would crash the process.
    stream.on("error", (error: Error) => {
      this.failure ??= error;
    });
  }

  /** Appends text; resolves at once unless the buffer had to be flushed into a full stream. */
  write(text: string): Promise<void> {
    this.assertOpen();
    this.buffer += text;
    return this.buffer.length >= this.bufferCharsMax ? this.flush() : RESOLVED;
  }

  async flush(): Promise<void> {
    this.assertUsable();
    if (this.buffer.length === 0) return;
    const chunk = this.buffer;
    this.buffer = "";
    if (!this.stream.write(chunk)) await this.drained();
  }

  async end(): Promise<void> {
    if (this.ended) return;
    await this.flush();
    this.ended = true;
    if (this.endStream) {
      this.stream.end();
      await finished(this.stream, { readable: false });
    }
    this.assertUsable();
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        this.stream.off("drain", onDrain);
        this.stream.off("error", onError);
        this.stream.off("close", onClose);
      };
      const onDrain = (): void => {
        cleanup();
        resolve();
      };
      const onError = (error: Error): void => {
        cleanup();
        reject(new RecordWriterClosedError("output stream failed", { cause: error }));
      };
      const onClose = (): void => {
        cleanup();
        reject(new RecordWriterClosedError("output stream closed while waiting for drain", { cause: this.failure }));
      };
      this.stream.on("drain", onDrain);
      this.stream.on("error", onError);
      this.stream.on("close", onClose);
    });
  }

  private assertOpen(): void {
    if (this.ended) throw new RecordWriterClosedError("write after end()");
    this.assertUsable();
  }

  private assertUsable(): void {
    if (this.failure !== undefined) throw new RecordWriterClosedError("output stream failed", { cause: this.failure });
  }
}

/** Writes each record as the line its subclass formats, counting them; the stream handling is shared. */
abstract class LineRecordWriter implements RecordWriter {
  abstract readonly format: RecordFormat;
  protected readonly text: TextStreamWriter;
  private readonly digits: number;
  private count = 0;

  constructor(stream: Writable, options: Partial<RecordWriterOptions>) {
    this.digits = checkDigits(options.significantDigits ?? DEFAULT_RECORD_WRITER_OPTIONS.significantDigits);
    this.text = new TextStreamWriter(stream, options);
  }

  protected abstract formatLine(record: SensorRecord, digits: number): string;

  get recordsWritten(): number {
    return this.count;
  }

  write(record: SensorRecord): Promise<void> {
    const done = this.text.write(this.formatLine(record, this.digits));
    this.count++;
    return done;
  }

  flush(): Promise<void> {
    return this.text.flush();
  }

  end(): Promise<void> {
    return this.text.end();
  }
}

/** One JSON object per line, fields in {@link SENSOR_RECORD_FIELDS} order. */
export class NdjsonRecordWriter extends LineRecordWriter {
  readonly format = "ndjson";

  constructor(stream: Writable, options: Partial<RecordWriterOptions> = {}) {
    super(stream, options);
  }

  protected formatLine(record: SensorRecord, digits: number): string {
    return formatNdjsonRecord(record, digits);
  }
}

/** RFC 4180 CSV with a header line (unless `header: false`), LF line ends. */
export class CsvRecordWriter extends LineRecordWriter {
  readonly format = "csv";

  constructor(stream: Writable, options: Partial<RecordWriterOptions> = {}) {
    super(stream, options);
    if (options.header ?? DEFAULT_RECORD_WRITER_OPTIONS.header) {
      // A stream failure here is kept by the TextStreamWriter and raised by the next write or end.
      this.text.write(`${CSV_HEADER}\n`).catch(() => undefined);
    }
  }

  protected formatLine(record: SensorRecord, digits: number): string {
    return formatCsvRecord(record, digits);
  }
}

export function createRecordWriter(format: RecordFormat, stream: Writable, options: Partial<RecordWriterOptions> = {}): RecordWriter {
  return format === "csv" ? new CsvRecordWriter(stream, options) : new NdjsonRecordWriter(stream, options);
}

/** The NDJSON line of one record, newline included. */
export function formatNdjsonRecord(
  record: SensorRecord,
  significantDigits: number = DEFAULT_RECORD_WRITER_OPTIONS.significantDigits,
): string {
  const value = roundSignificant(record.sensor_value, significantDigits);
  return (
    '{"machine_id":' +
    JSON.stringify(record.machine_id) +
    ',"timestamp":' +
    JSON.stringify(record.timestamp) +
    ',"sensor_type":' +
    JSON.stringify(record.sensor_type) +
    ',"sensor_value":' +
    (Number.isFinite(value) ? String(value) : "null") +
    ',"sensor_unit":' +
    JSON.stringify(record.sensor_unit) +
    ',"operating_mode":' +
    JSON.stringify(record.operating_mode) +
    ',"work_order_id":' +
    JSON.stringify(record.work_order_id) +
    "}\n"
  );
}

/** The CSV line of one record, newline included. */
export function formatCsvRecord(record: SensorRecord, significantDigits: number = DEFAULT_RECORD_WRITER_OPTIONS.significantDigits): string {
  const value = roundSignificant(record.sensor_value, significantDigits);
  return (
    csvField(record.machine_id) +
    "," +
    csvField(record.timestamp) +
    "," +
    csvField(record.sensor_type) +
    "," +
    (Number.isFinite(value) ? String(value) : "") +
    "," +
    csvField(record.sensor_unit) +
    "," +
    csvField(record.operating_mode) +
    "," +
    csvField(record.work_order_id) +
    "\n"
  );
}

/** `value` rounded to `digits` significant digits (correctly rounded decimal, via toPrecision); -0 becomes 0. */
export function roundSignificant(value: number, digits: number): number {
  if (value === 0 || !Number.isFinite(value)) return value === 0 ? 0 : value;
  return Number(value.toPrecision(digits)) + 0;
}

const CSV_NEEDS_QUOTES = /[",\r\n]/;

function csvField(text: string): string {
  return CSV_NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function checkDigits(digits: number): number {
  if (!Number.isInteger(digits) || digits < 1 || digits > 17) {
    throw new RangeError(`significantDigits must be an integer from 1 to 17, got ${digits}`);
  }
  return digits;
}
