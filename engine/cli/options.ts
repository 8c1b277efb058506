/** Option parsers shared by the commands: they turn bad flag values into commander errors. */
import { InvalidArgumentError } from "commander";

export function integerOption(flag: string, min: number, max: number): (text: string) => number {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${flag} must be an integer in ${min}..${max}, got "${text}"`);
    return n;
  };
}

export function numberOption(flag: string): (text: string) => number {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isFinite(n) || text.trim() === "") throw new InvalidArgumentError(`${flag} must be a number, got "${text}"`);
    return n;
  };
}
