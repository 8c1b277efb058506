/**
 * Part of `npm test`: makes sure the Debian packages the integration tests need (`nats-server`,
 * `clickhouse-server`, `python3-sklearn` for the scikit-learn comparison, and `chromium` for the
 * dashboard's browser test, test/kit/browser.ts) are installed,
 * installing them with apt-get when they are missing and this process may (root, apt-get
 * present). Where it cannot, it says so loudly; the tests that need them then skip themselves
 * (connectors/local/nats-server.ts `serverAvailable`) and nothing else is skipped.
 */
import { execFileSync, spawnSync } from "node:child_process";

export const SERVER_PACKAGES: Record<string, string> = {
  "nats-server": "nats-server",
  "clickhouse-server": "clickhouse-server",
  "python3-sklearn": "python3-sklearn",
  chromium: "chromium",
};

function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** Debian package → how to tell it is there. */
function present(command: string): boolean {
  if (command === "python3-sklearn") return spawnSync("/usr/bin/python3", ["-c", "import sklearn"], { stdio: "ignore" }).status === 0;
  return onPath(command);
}

function main(): void {
  const missing = Object.keys(SERVER_PACKAGES).filter((c) => !present(c));
  if (missing.length === 0) {
    process.stdout.write(`ensure-servers: ${Object.keys(SERVER_PACKAGES).join(", ")} present\n`);
    return;
  }
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isRoot || !onPath("apt-get")) {
    warn(missing, isRoot ? "apt-get is not available" : "not running as root, so apt-get cannot install them");
    return;
  }
  const packages = missing.map((c) => SERVER_PACKAGES[c]);
  process.stdout.write(`ensure-servers: installing ${packages.join(" ")} with apt-get\n`);
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  } catch (error) {
    warn(missing, `apt-get failed: ${(error as Error).message}`);
    return;
  }
  const still = missing.filter((c) => !present(c));
  if (still.length > 0) warn(still, "apt-get ran but they are still not on PATH");
}

function warn(missing: string[], why: string): void {
  const bar = "!".repeat(78);
  console.error(
    `${bar}\nensure-servers: ${missing.join(", ")} MISSING — ${why}.\n` +
      `The integration (and browser) tests that need them will be SKIPPED. Install with:\n  apt-get install -y ${missing.map((c) => SERVER_PACKAGES[c]).join(" ")}\n${bar}`,
  );
}

main();
