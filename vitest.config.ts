import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two test files at a time, also on a 2-core machine (vitest's default there is one): most
    // integration tests spend their time waiting on servers, child processes and simulated
    // clocks: on a fresh clone the suite took 683–698 s this way against 1,159 s one file at a
    // time (no test asserts a time).
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
