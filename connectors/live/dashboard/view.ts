/**
 * What every view is: an element the app mounts under #view, and a stop that ends its timers
 * and subscriptions when another view replaces it. Views get the page's one WebSocket.
 */
import type { LiveSocket } from "./live-socket.js";

export interface View {
  readonly el: HTMLElement;
  stop(): void;
}

export interface ViewContext {
  live: LiveSocket;
}

/** An element with optional class and text. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls = "", text = ""): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls !== "") e.className = cls;
  if (text !== "") e.textContent = text;
  return e;
}

/** Runs `task` now and every `ms` until the returned stop; a failing run is shown in `onError`, the next one still runs. */
export function every(ms: number, task: () => Promise<void>, onError: (e: unknown) => void): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async (): Promise<void> => {
    try {
      await task();
    } catch (e) {
      onError(e);
    }
    if (!stopped) timer = setTimeout(() => void tick(), ms);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** A topic handler that runs `task` a second after a message, once for every message in that second (a burst of events, one refresh). */
export function atMostOnceASecond(task: () => Promise<void>): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      void task().catch(() => undefined);
    }, 1000);
  };
}

/** A table body from rows of cells (text only: every value goes through textContent). */
export function fillTable(body: HTMLTableSectionElement, rows: ReadonlyArray<ReadonlyArray<string | HTMLElement>>): void {
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = h("tr");
      for (const c of cells) {
        const td = h("td");
        if (typeof c === "string") td.textContent = c;
        else td.append(c);
        tr.append(td);
      }
      return tr;
    }),
  );
}

export function table(headers: readonly string[]): { table: HTMLTableElement; body: HTMLTableSectionElement } {
  const t = h("table");
  const head = h("thead");
  const tr = h("tr");
  for (const x of headers) tr.append(h("th", "", x));
  head.append(tr);
  const body = h("tbody");
  t.append(head, body);
  return { table: t, body };
}

export function badge(level: string): HTMLElement {
  return h("span", `badge ${level}`, level);
}

export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  return new Date(ms).toLocaleTimeString();
}

export function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(digits);
}
