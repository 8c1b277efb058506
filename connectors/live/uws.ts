/**
 * The one module that imports uWebSockets.js. The build is `@trufflesuite/uws-js-unofficial`
 * (uWS.js 20.30 with binaries for the Node 20 ABI that run on glibc 2.36; the official package is
 * not on npm and its newer builds need glibc 2.38).
 *
 * That package falls back, with only a console warning, to a pure JavaScript implementation
 * (on top of `ws`) when its native binary does not load — correct but many times slower, and
 * without the native pub/sub fan-out the WebSocket hub counts on. {@link loadUws} therefore
 * checks which one it got: the binary for this platform, arch and ABI must be the module in the
 * require cache. The server logs the answer at start and reports it in /healthz and in the
 * `linewatch_uws_native` gauge. `UWS_USE_FALLBACK=1` forces the fallback (the package's own switch).
 */
import { createRequire } from "node:module";
import { createServer } from "node:net";
import type * as Uws from "@trufflesuite/uws-js-unofficial";

export type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  WebSocket,
  WebSocketBehavior,
  us_listen_socket as ListenSocket,
} from "@trufflesuite/uws-js-unofficial";

export type UwsModule = typeof Uws;

export interface UwsImplementation {
  uws: UwsModule;
  /** True when the native binary is in use. */
  native: boolean;
  /** `native uws_linux_x64_115.node`, or `fallback (JavaScript): <why>`. */
  description: string;
}

const PACKAGE = "@trufflesuite/uws-js-unofficial";

let loaded: UwsImplementation | undefined;

/** Loads uWS once and says whether the native binary is in use. */
export function loadUws(): UwsImplementation {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  const uws = require(PACKAGE) as UwsModule;
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  let binaryPath: string | undefined;
  try {
    binaryPath = require.resolve(`${PACKAGE}/binaries/${binary}`);
  } catch {
    binaryPath = undefined;
  }
  const native = binaryPath !== undefined && require.cache[binaryPath]?.exports === uws;
  const why =
    binaryPath === undefined
      ? `no ${binary} in ${PACKAGE}`
      : process.env.UWS_USE_FALLBACK !== undefined
        ? "UWS_USE_FALLBACK is set"
        : `${binary} did not load`;
  loaded = { uws, native, description: native ? `native ${binary}` : `fallback (JavaScript, slow): ${why}` };
  return loaded;
}

/**
 * Listens on host:port (0: a free port); resolves the listen socket and the port it got, null when
 * the port is taken. uWS binds with SO_REUSEPORT, so a second process on the same port would share
 * it silently (each answering half the requests, with its own tokens): a port is first bound
 * without it, which fails while anyone holds the port.
 */
export async function listen(
  app: Uws.TemplatedApp,
  host: string,
  port: number,
): Promise<{ socket: Uws.us_listen_socket; port: number } | null> {
  const { uws } = loadUws();
  if (port !== 0 && !(await portFree(host, port))) return null;
  return new Promise((resolve) => {
    app.listen(host, port, (socket) =>
      resolve(socket === false ? null : { socket, port: uws.us_socket_local_port(socket as unknown as Uws.us_socket) }),
    );
  });
}

/** Whether host:port can be bound exclusively right now (bound and released at once). */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** Stops listening and closes every connection of the app. */
export function closeApp(app: Uws.TemplatedApp, socket: Uws.us_listen_socket): void {
  const { uws } = loadUws();
  uws.us_listen_socket_close(socket);
  // app.close() exists in uWS.js ≥ 20.24 (closes all sockets) but not in this package's types.
  const closable = app as Uws.TemplatedApp & { close?: () => void };
  closable.close?.();
}
