/**
 * Writing HTTP replies on uWS: status lines, JSON bodies and the error shape every endpoint
 * uses, `{ "error": "<code>", "message": "<what to do>", … }`.
 */
import type { HttpResponse } from "./uws.js";

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: "OK",
  202: "Accepted",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export type HeaderList = ReadonlyArray<readonly [string, string]>;

/** `"404 Not Found"`. */
export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? "Status"}`;
}

/** Writes a whole reply (call inside a cork, or synchronously inside the uWS handler). */
export function writeReply(
  res: HttpResponse,
  status: number,
  contentType: string,
  body: string | Uint8Array,
  headers: HeaderList = [],
  cacheControl = "no-store",
): void {
  res.writeStatus(statusLine(status));
  res.writeHeader("content-type", contentType);
  res.writeHeader("cache-control", cacheControl);
  // The dashboard's page and assets are never framed by another site (clickjacking).
  res.writeHeader("x-frame-options", "DENY");
  res.writeHeader("x-content-type-options", "nosniff");
  for (const [k, v] of headers) res.writeHeader(k, v);
  res.end(body);
}

export function writeJson(res: HttpResponse, status: number, value: unknown, headers: HeaderList = []): void {
  writeReply(res, status, "application/json; charset=utf-8", `${JSON.stringify(value)}\n`, headers);
}

export function writeError(
  res: HttpResponse,
  status: number,
  code: string,
  message: string,
  extra: Readonly<Record<string, unknown>> = {},
  headers: HeaderList = [],
): void {
  writeJson(res, status, { error: code, message, ...extra }, headers);
}

/** The reply to a request without a valid token (WWW-Authenticate per RFC 6750). */
export function writeUnauthorized(res: HttpResponse, missing: boolean): void {
  writeError(
    res,
    401,
    "unauthorized",
    missing ? "an access token is required: Authorization: Bearer <token>, or ?token=<token>" : "the access token is not valid",
    {},
    [["www-authenticate", `Bearer realm="linewatch"${missing ? "" : ', error="invalid_token"'}`]],
  );
}

/** 429 with Retry-After in whole seconds (at least 1). */
export function writeRateLimited(res: HttpResponse, retryAfterMs: number): void {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  writeError(res, 429, "rate_limited", `too many requests for this token; retry after ${seconds} s`, { retry_after_s: seconds }, [
    ["retry-after", String(seconds)],
  ]);
}
