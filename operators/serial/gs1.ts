/**
 * GS1 rules on the TypeScript side: the mod-10 check digit (GS1 General Specifications §7.9.1)
 * and the AI encodable character set 82 (§7.11, Figure 7.11-1) that AI (21) serials use. The
 * kernel (kernels/serial.ts) applies the same rules per event; these serve the encoder, the
 * simulator, the reference and the tests.
 */

/** The 82 characters GS1 allows in AI (21) serial numbers. */
export const AI82_CHARACTERS = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
export const GTIN_LENGTHS: readonly number[] = [8, 12, 13, 14];
export const SERIAL_LENGTH_MAX = 20;

const AI82 = new Uint8Array(128);
for (const c of AI82_CHARACTERS) AI82[c.charCodeAt(0)] = 1;

export function isAi82Character(code: number): boolean {
  return code < 128 && AI82[code] === 1;
}

/** Every character of `text` is in the AI-82 set (the empty string passes). */
export function isAi82(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (!isAi82Character(text.charCodeAt(i))) return false;
  return true;
}

/** The check digit for `digits` (the code without its check digit); NaN when not all digits. */
export function gs1CheckDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    const d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    // The digit next to the check digit weighs 3, then 1, 3, … leftwards.
    sum += (digits.length - 1 - i) % 2 === 0 ? 3 * d : d;
  }
  return (10 - (sum % 10)) % 10;
}

/** A code of at least two digits whose last digit is its GS1 mod-10 check digit (GTIN, SSCC, GSIN, GLN). */
export function gs1CheckDigitValid(code: string): boolean {
  if (code.length < 2 || !/^[0-9]+$/.test(code)) return false;
  return gs1CheckDigit(code.slice(0, -1)) === code.charCodeAt(code.length - 1) - 48;
}

/** A GTIN-8, -12, -13 or -14 with a correct check digit. */
export function gtinValid(gtin: string): boolean {
  return GTIN_LENGTHS.includes(gtin.length) && gs1CheckDigitValid(gtin);
}

/** `digits` followed by its check digit. */
export function withCheckDigit(digits: string): string {
  const c = gs1CheckDigit(digits);
  if (Number.isNaN(c)) throw new RangeError(`not all digits: ${JSON.stringify(digits)}`);
  return digits + String(c);
}
