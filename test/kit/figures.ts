/**
 * Figures a test measured, printed for the person reading the run (rates, error bounds). They
 * are never asserted as times: the machine is shared and noisy.
 */
export function printFigures(text: string): void {
  process.stdout.write(`${text}\n`);
}
