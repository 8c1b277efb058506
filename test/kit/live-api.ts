/**
 * The HTTP API of a `linewatch run` child process: waits until it has generated its token and —
 * on NATS (`consuming`, the default) — is consuming, then calls the API with that token (read from
 * the dashboard URL's fragment). A file or simulator run prints no "consuming": pass false.
 */
import { expect } from "vitest";
import { type CliProcess, logEvents } from "./cli.js";
import { waitUntil } from "./wait.js";

export type LiveApi = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: Record<string, unknown> }>;

export async function liveApi(run: CliProcess, consuming = true): Promise<LiveApi> {
  let link: URL | null = null;
  const ready = await waitUntil(() => {
    const generated = logEvents(run.output()).find((e) => String(e.msg).startsWith("no access token configured"));
    if (generated !== undefined) link = new URL(String((generated as { url?: unknown }).url));
    return link !== null && (!consuming || run.output().includes("linewatch run: consuming"));
  }, 60_000);
  expect(ready, run.output()).toBe(true);
  const { origin, hash } = link as unknown as URL;
  const token = new URLSearchParams(hash.slice(1)).get("token") as string;
  return async (method, path, body) => {
    const res = await fetch(`${origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
}
