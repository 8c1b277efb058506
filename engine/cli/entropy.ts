/**
 * `linewatch entropy <file>`: the NIST SP 800-90B most-common-value estimate of a binary file of
 * symbols (one per byte), as JSON — to check linewatch's estimator against NIST's own tool
 * (`ea_non_iid -v <file> <bits>` prints the same mode, p-hat, p_u and min-entropy).
 */
import { readFileSync, statSync } from "node:fs";
import { Command } from "commander";
import { InputError } from "../core/mod.js";
import { MCV_Z, mcvOfSymbols } from "../../operators/serial/mod.js";
import { integerOption, numberOption } from "./options.js";

/** Largest file read whole (the tool itself reads whole files too). */
export const ENTROPY_FILE_BYTES_MAX = 1 << 30;

export function entropyCommand(): Command {
  return new Command("entropy")
    .description("most-common-value min-entropy (NIST SP 800-90B §6.3.1) of a binary file of symbols, as JSON")
    .argument("<file>", "binary file, one symbol per byte")
    .option(
      "--bits-per-symbol <n>",
      "bits per symbol, 1..8 (default: from the highest bit set, as NIST's tool infers it)",
      integerOption("--bits-per-symbol", 1, 8),
    )
    .option(
      "--z <z>",
      `normal quantile of the upper bound (default: NIST's tool's unrounded 2.5758293035489008; the standard's text rounds it to 2.576)`,
      numberOption("--z"),
      MCV_Z,
    )
    .addHelpText(
      "after",
      `
Output: {"file", "symbols", "bits_per_symbol", "z", "literal": {"samples", "mode_count", "p_hat",
"p_u", "min_entropy"}, "bitstring": {… per bit} | null, "min_entropy_per_symbol", "warnings"}.
Symbols are bytes masked to bits_per_symbol, as in NIST's ea_non_iid; the bitstring estimate
reads each symbol's bits most significant first.`,
    )
    .action((file: string, flags: { bitsPerSymbol?: number; z: number }) => {
      const cannotRead = (cause: unknown) => new InputError(`cannot read ${file}: ${(cause as Error).message}`, { cause });
      let size: number;
      try {
        size = statSync(file).size;
      } catch (cause) {
        throw cannotRead(cause);
      }
      if (size > ENTROPY_FILE_BYTES_MAX) throw new InputError(`${file}: ${size} bytes, more than ${ENTROPY_FILE_BYTES_MAX}`);
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (cause) {
        throw cannotRead(cause);
      }
      const estimate = mcvOfSymbols(new Uint8Array(bytes), flags.bitsPerSymbol, flags.z);
      process.stdout.write(`${JSON.stringify({ file, ...estimate }, null, 1)}\n`);
    });
}
