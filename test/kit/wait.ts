/** Waiting on a condition in integration tests (never on a time: the machine is shared). */

/** Polls `done` every 100 ms until it holds; false when `timeoutMs` passes first. */
export async function waitUntil(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
