/**
 * The serial job's two layouts behind a real nats-server (`node dist/bench/serial-nats-bench.js
 * [--events n] [--pairs n] [--json]`): the ledger on the main thread with the kernel on a pool
 * worker, and the ledger on a thread of its own that runs the kernel too — what decides the
 * default on two cores (engine/jobs/serial-job.ts LEDGER_THREAD_MIN_CORES; docs/serial-job.md,
 * "Which layout on two cores").
 *
 * Each run starts its own nats-server (throw-away store, free loopback port) and a publisher
 * process (this module with `--publish`), which makes the job benchmark's messages (one seeded
 * serial stream, every attack kind, serial-job-bench.ts) untimed, then publishes them on core NATS
 * as fast as the client goes (a flush every 65,536), on the cue of the consumer being subscribed.
 * The consumer is the job's own core NATS path (consumeSerialNats: the bounded subscription, which
 * sheds and counts what does not fit, takeSerialMessage, a non-durable flush every 250 ms) into
 * SerialOutputs with counting targets. The layouts alternate, `pairs` times (ratios within a
 * pair: this machine is shared). Per run: events taken and shed, events/s from the cue to the last
 * message taken, the main thread's and the ledger thread's CPU per event taken (the main thread's
 * includes the NATS client's), and the publisher's rate — when the job takes every event, the
 * publisher set the pace. The detections checksum is the job benchmark's (20835 when every event
 * of the default stream was taken).
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { connect } from "nats";
import { startNatsServer } from "../connectors/local/mod.js";
import { connectNats, SerialNatsInput } from "../connectors/nats/mod.js";
import { createLogger } from "../engine/core/mod.js";
import { consumeSerialNats, DEFAULT_SERIAL_JOB, DEFAULT_SERIAL_NATS, SerialJob, SerialOutputs } from "../engine/jobs/mod.js";
import { benchMachine, machineLine, threadCpuMicros, type BenchMachine } from "./bench-kit.js";
import { countingTargets, freshAnalysis, messageAt, serialMessages } from "./serial-job-bench.js";

export type SerialLayout = "in-thread" | "ledger-thread";

export interface SerialNatsRun {
  layout: SerialLayout;
  /** Events the job took (the rest were shed). */
  taken: number;
  shed: number;
  eventsPerSecond: number;
  /** CPU ns per event taken: the main thread (NATS client included), the ledger thread (null: in-thread), the process. */
  mainNsPerEvent: number;
  ledgerThreadNsPerEvent: number | null;
  cpuNsPerEvent: number;
  /** Messages per second the publisher sent. */
  publishedPerSecond: number;
  checksum: number;
  detections: number;
}

export interface SerialNatsBench {
  machine: BenchMachine;
  events: number;
  /** In-thread then ledger thread, per pair. */
  pairs: Array<[SerialNatsRun, SerialNatsRun]>;
}

const SITE = "bench";
const LINES = 16;
const SEED = 1;
/** After the publisher is done, the run ends once no message came for this long (what nats-server dropped never comes). */
const QUIET_MS = 3000;
const QUIET = createLogger({ level: "silent" });

/** The layouts alternately, `pairs` times, over `events` messages each (module comment). */
export async function measureSerialNats(events: number, pairs: number, say: (line: string) => void): Promise<SerialNatsBench> {
  const machine = benchMachine();
  const out: Array<[SerialNatsRun, SerialNatsRun]> = [];
  for (let p = 0; p < pairs; p++) {
    say(`pair ${p + 1} of ${pairs}: in-thread`);
    const a = await runLayout("in-thread", events);
    say(`pair ${p + 1} of ${pairs}: ledger thread`);
    const b = await runLayout("ledger-thread", events);
    out.push([a, b]);
  }
  return { machine, events, pairs: out };
}

export function formatSerialNats(r: SerialNatsBench): string {
  const lines = [`serial job behind nats-server (core NATS), ${r.events} events per run, the layouts alternately`, machineLine(r.machine)];
  const row = (x: SerialNatsRun) =>
    `  ${x.layout.padEnd(13)} taken ${String(x.taken).padStart(8)} shed ${String(x.shed).padStart(8)}  ${(x.eventsPerSecond / 1e6).toFixed(3)} M events/s  ` +
    `main ${Math.round(x.mainNsPerEvent)} ns/event` +
    (x.ledgerThreadNsPerEvent === null ? "" : `, ledger thread ${Math.round(x.ledgerThreadNsPerEvent)}`) +
    `, process ${Math.round(x.cpuNsPerEvent)}; publisher ${(x.publishedPerSecond / 1e6).toFixed(3)} M/s; checksum ${x.checksum}`;
  r.pairs.forEach(([a, b], i) => {
    lines.push(`pair ${i + 1}:`, row(a), row(b));
    lines.push(
      `  ledger thread ÷ in-thread: events taken ${(b.taken / a.taken).toFixed(2)}×, events/s ${(b.eventsPerSecond / a.eventsPerSecond).toFixed(2)}×`,
    );
  });
  return lines.join("\n");
}

// ---- internals ----

/** One run: a fresh nats-server, the publisher process, the job in `layout` until every message is taken or shed. */
async function runLayout(layout: SerialLayout, events: number): Promise<SerialNatsRun> {
  const server = await startNatsServer();
  const publisher = fork(fileURLToPath(import.meta.url), ["--publish", server.url, String(events)], {
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  try {
    const published = replyOf<{ ms: number }>(publisher, "done");
    await replyOf(publisher, "ready");
    const nc = await connectNats({ servers: server.url });
    try {
      const done = { published: false };
      void published.then(() => (done.published = true));
      const r = await consumeLayout(nc, layout, events, done, () => publisher.send("go"));
      const p = await published;
      return { ...r, publishedPerSecond: (events * 1000) / p.ms };
    } finally {
      await nc.close();
    }
  } finally {
    publisher.kill();
    await server.dispose();
  }
}

/** The job's core NATS path in `layout`; `go` is called once it is subscribed; `publisher.published`: the publisher is done. */
async function consumeLayout(
  nc: Awaited<ReturnType<typeof connectNats>>,
  layout: SerialLayout,
  events: number,
  publisher: { published: boolean },
  go: () => void,
): Promise<Omit<SerialNatsRun, "publishedPerSecond">> {
  const t = countingTargets();
  let outputs: SerialOutputs | undefined;
  const analysis = freshAnalysis((e) => outputs?.quarantined(e));
  outputs = new SerialOutputs(analysis.quarantine, { sink: t.sink as never, live: t.live, log: QUIET });
  const thread = layout === "ledger-thread";
  const job = new SerialJob({
    ...DEFAULT_SERIAL_JOB,
    analysis,
    outputs,
    workers: 1,
    linesMax: LINES,
    ledgerThread: thread,
    kernelsOnLedgerThread: thread,
  });
  const input = new SerialNatsInput(nc, SITE);
  const end = { wall: 0, main: 0, cpu: { user: 0, system: 0 }, ledgerMicros: Number.NaN };
  let t0 = { wall: 0, main: 0, cpu: process.cpuUsage() };
  let stop = (): void => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const watch = watchProgress(input, events, publisher, async (lastAt) => {
    end.wall = lastAt - t0.wall;
    end.main = threadCpuMicros() - t0.main;
    end.cpu = process.cpuUsage(t0.cpu);
    end.ledgerMicros = (await job.ledgerThreadReport())?.cpuMicros ?? Number.NaN;
    stop();
  });
  const ready = (): void => {
    t0 = { wall: performance.now(), main: threadCpuMicros(), cpu: process.cpuUsage() };
    watch.start();
    go();
  };
  const r = await consumeSerialNats(nc, input, job, {
    ...DEFAULT_SERIAL_NATS,
    site: SITE,
    checkpointIntervalMs: 3_600_000,
    stop: stopped,
    onReady: ready,
    log: QUIET,
  });
  await outputs.close();
  const taken = r.events;
  return {
    layout,
    taken,
    shed: r.shed,
    eventsPerSecond: (taken * 1000) / end.wall,
    mainNsPerEvent: (end.main * 1000) / taken,
    ledgerThreadNsPerEvent: thread ? (end.ledgerMicros * 1000) / taken : null,
    cpuNsPerEvent: ((end.cpu.user + end.cpu.system) * 1000) / taken,
    checksum: t.seen.checksum,
    detections: t.seen.detections,
  };
}

/** Calls `done(time of the last message)` once `events` messages were taken, or, the publisher done, none came for QUIET_MS (the rest were shed). */
function watchProgress(input: SerialNatsInput, events: number, publisher: { published: boolean }, done: (lastAt: number) => Promise<void>) {
  let timer: NodeJS.Timeout | undefined;
  return {
    start(): void {
      let last = 0;
      let lastAt = performance.now();
      timer = setInterval(() => {
        const m = input.counts().messages;
        if (m !== last) {
          last = m;
          lastAt = performance.now();
        }
        if (m >= events || (publisher.published && performance.now() - lastAt > QUIET_MS)) {
          clearInterval(timer);
          void done(lastAt);
        }
      }, 5);
    },
  };
}

/** The next message of kind `kind` from the child. */
function replyOf<T = unknown>(child: ChildProcess, kind: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { kind: string } & T) => {
      if (m.kind !== kind) return;
      child.off("message", onMessage);
      resolve(m);
    };
    child.on("message", onMessage);
    child.once("exit", (code) => reject(new Error(`publisher exited (code ${code}) before "${kind}"`)));
  });
}

/** The publisher process: makes the messages, says ready, publishes them on "go", says done with its time. */
async function publish(url: string, events: number): Promise<void> {
  const s = serialMessages(events, LINES, SEED);
  const nc = await connect({ servers: url });
  const send = (m: object) => process.send?.(m);
  const go = new Promise((resolve) => process.once("message", resolve));
  send({ kind: "ready" });
  await go;
  const t0 = performance.now();
  for (let i = 0; i < s.n; i++) {
    nc.publish(s.subjects[s.lineOf[i]], messageAt(s, i));
    if ((i & 0xffff) === 0xffff) await nc.flush();
  }
  await nc.flush();
  send({ kind: "done", ms: performance.now() - t0 });
  await nc.close();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--publish") return publish(args[1], Number(args[2]));
  const value = (flag: string, fallback: number): number => {
    const i = args.indexOf(flag);
    if (i < 0) return fallback;
    const v = Number(args[i + 1]);
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${flag} needs a positive integer, got ${args[i + 1]}`);
    return v;
  };
  const r = await measureSerialNats(value("--events", 1_000_000), value("--pairs", 3), (line) =>
    process.stderr.write(`bench serial-nats: ${line}\n`),
  );
  process.stdout.write(args.includes("--json") ? `${JSON.stringify(r, null, 2)}\n` : `${formatSerialNats(r)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
