/**
 * WebSocket publish benchmark: what `LiveServer.publish` costs the engine's thread, and what the
 * subscribers get, for N real subscribers (`ws` clients in a child process, so their parsing does
 * not run on the server's thread).
 *
 *   node dist/bench/ws-publish-bench.js [--messages 200000] [--batch 1000] [--subscribers 1,10,100] [--bytes 200]
 *
 * Per variant it prints: publishes/s counting only the time inside `publish` (the engine's cost),
 * publishes/s over the whole run (publish + uWS's fan-out and socket writes, which run on the
 * same thread between batches), deliveries/s (publishes × subscribers reached), and what the
 * subscribers received, with the ratio of `publish` to a bare `JSON.stringify` of the same record
 * (the encoding floor) and to a publish with no subscriber (the bookkeeping floor).
 *
 * Variants: no subscriber; N streaming JSON subscribers; N streaming msgpack; N paced (10/s per
 * topic). Non-goals: asserting a time (a benchmark is not a test); TLS; compression.
 */
import { fork, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { availableParallelism, loadavg } from "node:os";
import { startLiveServer, type LiveServer } from "../connectors/live/live-server.js";

interface Options {
  messages: number;
  batch: number;
  subscribers: number[];
  bytes: number;
}

interface ClientReport {
  received: number;
}

const TOKEN = "bench-token-0123456789abcdef";
const TOPIC = "machine/M-001";

function parseArgs(argv: string[]): Options {
  const o: Options = { messages: 200_000, batch: 1000, subscribers: [1, 10, 100], bytes: 200 };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === "--messages") o.messages = Number(v);
    else if (k === "--batch") o.batch = Number(v);
    else if (k === "--subscribers") o.subscribers = v.split(",").map(Number);
    else if (k === "--bytes") o.bytes = Number(v);
  }
  return o;
}

/** A record like a scored reading, padded to about `bytes` of JSON. */
function record(i: number, bytes: number): Record<string, unknown> {
  const r = { machine_id: "M-001", sensor_type: "temperature", timestamp: 1_767_225_600_000 + i, value: 60 + (i % 17) * 0.1, mean: 60.4, std: 1.2, z: 0.33, zone: 1, rules: 0, pad: "" };
  r.pad = "x".repeat(Math.max(0, bytes - JSON.stringify(r).length));
  return r;
}

async function startClients(url: string, n: number, rate: number): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), ["--client", url, String(n), String(rate)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    child.once("message", (m) => (m === "ready" ? resolve() : reject(new Error(String(m)))));
    child.once("exit", (code) => reject(new Error(`client process exited with ${code}`)));
  });
  return child;
}

function reports(child: ChildProcess): Promise<ClientReport[]> {
  return new Promise((resolve) => {
    child.once("message", (m) => resolve(m as ClientReport[]));
    child.send("report");
  });
}

async function variant(server: LiveServer, o: Options, label: string, n: number, format: string, rate: number, topicIndex: number): Promise<{ insideUs: number }> {
  const topic = `${TOPIC}-${topicIndex}`;
  const child = n === 0 ? undefined : await startClients(`${server.wsUrl}?token=${TOKEN}&format=${format}|${topic}`, n, rate);
  const records = Array.from({ length: 64 }, (_, i) => record(i, o.bytes));
  let inside = 0;
  let insideCpu = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < o.messages; i += o.batch) {
    const a = performance.now();
    const c = process.cpuUsage();
    const end = Math.min(o.messages, i + o.batch);
    for (let j = i; j < end; j++) server.publish(topic, records[j & 63]);
    const dc = process.cpuUsage(c);
    insideCpu += (dc.user + dc.system) / 1000;
    inside += performance.now() - a;
    // The engine yields between batches: uWS writes the sockets here.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const published = performance.now() - t0;
  const cpuAll = process.cpuUsage(cpu0);
  let got = 0;
  let delivered = published;
  if (child !== undefined) {
    // Until every subscriber has everything (streaming) or nothing more arrives (paced).
    let last = "";
    for (let k = 0; k < 600; k++) {
      const r = await reports(child);
      got = r.reduce((sum, c) => sum + c.received, 0);
      if (got === n * o.messages) break;
      if (JSON.stringify(r) === last && rate > 0) break;
      last = JSON.stringify(r);
      await new Promise((resolve) => setTimeout(resolve, rate > 0 ? 300 : 20));
    }
    delivered = performance.now() - t0;
    child.kill();
  }
  const insideUs = (inside * 1000) / o.messages;
  const cpuUs = (insideCpu * 1000) / o.messages;
  const cpuAllUs = ((cpuAll.user + cpuAll.system) / o.messages);
  console.log(
    `${label.padEnd(22)} publish ${insideUs.toFixed(3).padStart(7)} µs wall, ${cpuUs.toFixed(3).padStart(7)} µs CPU (${(o.messages / (inside / 1000) / 1e6).toFixed(2).padStart(5)} M/s); server thread CPU incl. fan-out ${cpuAllUs.toFixed(2)} µs/msg  ` +
      `published in ${(published / 1000).toFixed(2)} s (${(o.messages / (published / 1000) / 1e3).toFixed(0).padStart(5)} k/s)` +
      (n === 0 ? "" : `  delivered ${(got / n).toFixed(0)}/subscriber in ${(delivered / 1000).toFixed(2)} s: ${(got / (delivered / 1000) / 1e6).toFixed(2)} M msgs/s`),
  );
  return { insideUs };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const server = await startLiveServer({
    port: 0, log: () => {}, tokens: [{ token: TOKEN, topics: ["#"], requestsPerSec: 10_000, requestBurst: 10_000 }], wsSendBufferBytesMax: 64 << 20, wsConnectionsMax: 10_000,
  });
  const r0 = record(0, o.bytes);
  const tj = performance.now();
  let chars = 0;
  for (let i = 0; i < o.messages; i++) chars += JSON.stringify(r0).length;
  const stringifyUs = ((performance.now() - tj) * 1000) / o.messages;
  void loadavg;
  console.log(`load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores`);
  console.log(`ws publish benchmark: ${o.messages} messages of ~${o.bytes} B JSON in batches of ${o.batch}; uWS ${server.uwsImplementation}; JSON.stringify alone ${stringifyUs.toFixed(3)} µs (${chars % 10})`);
  let topic = 0;
  const none = await variant(server, o, "no subscriber", 0, "json", 0, topic++);
  for (const n of o.subscribers) {
    const json = await variant(server, o, `${n} streaming json`, n, "json", 0, topic++);
    console.log(`${"".padEnd(22)} ratio to JSON.stringify ${(json.insideUs / stringifyUs).toFixed(2)}, to no subscriber ${(json.insideUs / none.insideUs).toFixed(1)}`);
    await variant(server, o, `${n} streaming msgpack`, n, "msgpack", 0, topic++);
    await variant(server, o, `${n} paced 10/s`, n, "json", 10, topic++);
  }
  await server.close();
}

/**
 * The child: n subscribers on one topic over raw TCP (a WebSocket handshake, one masked subscribe
 * frame, then frames counted by their headers only), so that what limits the run is the server,
 * not the clients' parsing. Answers "report" with what each received.
 */
async function client(url: string, n: number, rate: number): Promise<void> {
  const [wsUrl, topic] = url.split("|");
  const u = new URL(wsUrl);
  const state: ClientReport[] = [];
  await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
    const s: ClientReport = { received: 0 };
    state.push(s);
    const sock = connect(Number(u.port), u.hostname);
    sock.setNoDelay(true);
    sock.on("error", reject);
    let upgraded = false;
    let skip = 0;
    let frames = 0;
    sock.on("connect", () => {
      sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    // Frames are counted from their headers; a header split across chunks is completed from
    // the next one without copying the chunk.
    let head: number[] = [];
    sock.on("data", (chunk: Buffer) => {
      let i = 0;
      if (!upgraded) {
        const text = chunk.toString("latin1");
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = true;
        i = end + 4;
        sock.write(maskedText(JSON.stringify({ type: "subscribe", topics: [topic], rate })));
      }
      while (i < chunk.length) {
        if (skip > 0) {
          const take = Math.min(skip, chunk.length - i);
          skip -= take;
          i += take;
          continue;
        }
        head.push(chunk[i++]);
        if (head.length < 2) continue;
        const len7 = head[1] & 0x7f;
        const need = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
        if (head.length < need) continue;
        skip = len7 === 126 ? (head[2] << 8) | head[3] : len7 === 127 ? Number(Buffer.from(head.slice(2, 10)).readBigUInt64BE()) : len7;
        head = [];
        frames++;
        // Frames 1 and 2 are "welcome" and "subscribed"; the rest are messages.
        if (frames === 2) resolve();
        else if (frames > 2) s.received++;
      }
    });
  })));
  process.send!("ready");
  process.on("message", (m) => m === "report" && process.send!(state));
}

/** A client → server text frame (clients must mask, RFC 6455 §5.3). */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const header = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  return Buffer.concat([header, mask, payload]);
}

if (process.argv[2] === "--client") {
  void client(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
} else if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
