/** connectors/files: the names other folders use. Import from here, never from a file inside. */
export { CMAPSS_SENSORS, type CmapssUnit, readCmapss, remainingUsefulLife } from "./cmapss.js";
export { LineBuffer, type PackedRows, rowText, unpackRows } from "./line-buffer.js";
export { createRecordWriter, RECORD_FORMATS, type RecordFormat, TextStreamWriter } from "./record-writers.js";
export { referenceDataDir } from "./reference-data.js";
export { createOutputFile, OUTPUT_FILE_FS, OUTPUT_WRITE_BYTES } from "./output-file.js";
export { DEFAULT_FILE_BYTES_MAX, RotatingFileSink } from "./rotating-file-sink.js";
export { type CellValue, formatOfPath, readTable, splitCsvLine, type TableHeader, type TableRow } from "./table-reader.js";
export { type CsvBlock, type CsvHeader, scanCsv } from "./csv-scanner.js";
export { type BatchStreams, parseBatchStreams, readBatchStreams } from "./batch-streams.js";
