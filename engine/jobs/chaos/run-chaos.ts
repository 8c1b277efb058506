/**
 * `linewatch chaos`: the scenarios on one pair of throw-away servers, one after another, each
 * ending in its reconciliation; the rows of the result table. Scenarios not built yet are not
 * listed (docs/commands/chaos.md says which).
 */
import { ChaosEnv } from "./env.js";
import { clickhouseOutageScenario } from "./clickhouse-outage.js";
import { fuzzScenario } from "./fuzz.js";
import { httpAbuseScenario } from "./http-abuse.js";
import { killRestartScenario } from "./kill-restart.js";
import { natsRestartScenario } from "./nats-restart.js";
import { overloadScenario } from "./overload.js";
import { slowSubscriberScenario } from "./slow-subscriber.js";
import type { ChaosRow } from "./table.js";

/** The scenarios `--scenario` takes, in the order they run. */
export const CHAOS_SCENARIOS = ["kill", "clickhouse", "nats", "fuzz", "http", "slow-subscriber", "overload"] as const;
export type ChaosScenario = (typeof CHAOS_SCENARIOS)[number];

export interface ChaosOptions {
  scenarios: readonly ChaosScenario[];
  /** Each scenario small (a few records and cycles): minutes in all, for CI. */
  quick: boolean;
  seed: number;
  /** kill -9 cycles (default 20, 3 with quick). */
  cycles?: number;
  /** Records per second the simulator publishes (default 1000). */
  rate?: number;
  /** The engine's --fetch (default 2000, env.ts). */
  fetch?: number;
  /** Run every engine under `node --cpu-prof`, profiles written here. */
  profileDir?: string;
  /** Progress lines (stderr in the CLI). */
  log: (line: string) => void;
}

/**
 * Runs the chosen scenarios. Each on fresh servers (one scenario's faults cannot leak into the
 * next's figures), but with `quick` on one pair (their streams, sites and databases are their
 * own): starting clickhouse-server is seconds a scenario on a loaded machine.
 */
export async function runChaos(o: ChaosOptions): Promise<ChaosRow[]> {
  const rows: ChaosRow[] = [];
  let shared: ChaosEnv | null = null;
  try {
    for (const scenario of CHAOS_SCENARIOS) {
      if (!o.scenarios.includes(scenario)) continue;
      const env: ChaosEnv = shared ?? (await ChaosEnv.start(o.profileDir, o.fetch));
      if (o.quick) shared = env;
      try {
        rows.push(await runScenario(env, scenario, o));
      } finally {
        if (!o.quick) await env.dispose();
      }
    }
  } finally {
    await shared?.dispose();
  }
  return rows;
}

function runScenario(env: ChaosEnv, scenario: ChaosScenario, o: ChaosOptions): Promise<ChaosRow> {
  const rate = o.rate ?? 1000;
  switch (scenario) {
    case "kill": {
      const cycles = o.cycles ?? (o.quick ? 3 : 20);
      return killRestartScenario(env, {
        cycles,
        rate,
        // Enough to keep records coming through the cycles (each life is seconds on a loaded machine).
        records: o.quick ? 6000 : cycles * 5 * rate,
        seed: o.seed,
        killAfterMs: o.quick ? [200, 1500] : [200, 3000],
        log: o.log,
      });
    }
    case "clickhouse":
      return clickhouseOutageScenario(env, {
        outageMs: o.quick ? 10_000 : 60_000,
        warmMs: o.quick ? 4000 : undefined,
        afterMs: o.quick ? 3000 : undefined,
        rate,
        seed: o.seed,
        log: o.log,
      });
    case "fuzz":
      return fuzzScenario(env, { malformed: o.quick ? 2000 : 10_000, valid: o.quick ? 2000 : 10_000, seed: o.seed, log: o.log });
    case "http":
      return httpAbuseScenario(env, { records: o.quick ? 2000 : 10_000, rounds: o.quick ? 2 : 20, seed: o.seed, log: o.log });
    case "nats":
      return natsRestartScenario(env, { records: o.quick ? 5000 : 30_000, rate, seed: o.seed, log: o.log });
    case "slow-subscriber":
      return slowSubscriberScenario(env, { rate, phaseMs: o.quick ? 8000 : 30_000, normal: 10, seed: o.seed, log: o.log });
    case "overload":
      // Base load: --rate when given, else a quarter of the sustainable rate measured first.
      return overloadScenario(env, {
        baseRate: o.rate,
        baseMs: o.quick ? 1500 : 10_000,
        overloadMs: o.quick ? 2000 : 30_000,
        afterMs: o.quick ? 1500 : 30_000,
        probeRecords: o.quick ? 20_000 : 100_000,
        probeCoreRecords: o.quick ? 40_000 : 500_000,
        seed: o.seed,
        log: o.log,
      });
  }
}
