import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two test files at a time, also on a 2-core machine (vitest's default there is one): most
    // integration tests spend their time waiting on servers, child processes and simulated
    // clocks, so the suite's wall time falls by about a third while no test asserts a time.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
