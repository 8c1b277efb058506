/**
 * Who may use the live server: access tokens, what each grants (WebSocket topics, API scopes,
 * rates) and the per-token request budget.
 *
 * A token is presented as `Authorization: Bearer <token>`, as `?token=<token>` in the URL
 * (browsers cannot set headers on a WebSocket), or as the `lw_token` cookie the dashboard's login
 * sets (HttpOnly, SameSite=Strict: the page's script never reads it, other sites never send it). Tokens are compared by their SHA-256, so the
 * lookup takes the same time whatever prefix a guess shares with a real token, and the server
 * keeps no token in the clear after start. When no token is configured the server generates one
 * (see {@link generatedAccess}), so the API and the WebSocket never run open by accident.
 *
 * API scopes: `maintenance:read`, `maintenance:write` (predict), `alerts:read`, `alerts:write`
 * (acknowledge an alert episode), `quarantine:read`,
 * `quarantine:write` (release), `spc:read`, `spc:write` (re-baseline, set limits), `metrics:read`
 * (only when /metrics requires a token). A token lists scope patterns: a scope, `<area>:*`,
 * `*:read`, or `*` for all.
 */
import { createHash, randomBytes } from "node:crypto";
import { ConfigError } from "../../engine/core/mod.js";
import { TopicGrant } from "./topics.js";

export const API_SCOPES = Object.freeze([
  "maintenance:read",
  "maintenance:write",
  "alerts:read",
  "alerts:write",
  "quarantine:read",
  "quarantine:write",
  "spc:read",
  "spc:write",
  "metrics:read",
] as const);
export type ApiScope = (typeof API_SCOPES)[number];

/** What to do with a subscriber whose send buffer passes `wsSendBufferBytesMax`. */
export type SlowSubscriberPolicy = "sample" | "disconnect";

/** One token as configured (the `tokens` list of the server options or config file). */
export interface AccessTokenConfig {
  /** The secret: at least {@link TOKEN_LENGTH_MIN} characters, no whitespace. */
  token: string;
  /** A label for logs (never the token itself); default `token-<first 8 hex of its SHA-256>`. */
  name?: string;
  /** Topic patterns this token may subscribe to (`+` one level, final `#` any); default none. */
  topics?: readonly string[];
  /** API scope patterns (`spc:read`, `spc:*`, `*:read`, `*`); default none. */
  scopes?: readonly string[];
  /** Default: the server's `wsSlowPolicy`. */
  slowPolicy?: SlowSubscriberPolicy;
  /** Messages per second per topic per subscriber at most (0: no limit). Default: the server's. */
  topicRatePerSecMax?: number;
  /** API requests (and WebSocket connects and client messages) per second. Default: the server's. */
  requestsPerSec?: number;
  /** Requests that may come at once before the rate applies. Default: the server's. */
  requestBurst?: number;
}

/** Server-wide defaults for what a token does not set. */
export interface AccessDefaults {
  wsSlowPolicy: SlowSubscriberPolicy;
  topicRatePerSecMax: number;
  requestsPerSec: number;
  requestBurst: number;
}

export const TOKEN_LENGTH_MIN = 16;

/** A resolved token: what it may do and its request budget. */
export class AccessGrant {
  readonly topics: TopicGrant;
  readonly scopes: ReadonlySet<ApiScope>;
  readonly slowPolicy: SlowSubscriberPolicy;
  readonly topicRatePerSecMax: number;
  readonly bucket: TokenBucket;

  constructor(
    readonly name: string,
    config: AccessTokenConfig,
    defaults: AccessDefaults,
  ) {
    this.topics = new TopicGrant(config.topics ?? []);
    this.scopes = resolveScopes(name, config.scopes ?? []);
    this.slowPolicy = config.slowPolicy ?? defaults.wsSlowPolicy;
    if (this.slowPolicy !== "sample" && this.slowPolicy !== "disconnect")
      throw new ConfigError(`tokens[${name}].slowPolicy`, `must be "sample" or "disconnect", got ${JSON.stringify(this.slowPolicy)}`);
    this.topicRatePerSecMax = config.topicRatePerSecMax ?? defaults.topicRatePerSecMax;
    if (!(this.topicRatePerSecMax >= 0 && Number.isFinite(this.topicRatePerSecMax)))
      throw new ConfigError(`tokens[${name}].topicRatePerSecMax`, `must be ≥ 0 (0: no limit), got ${this.topicRatePerSecMax}`);
    this.bucket = new TokenBucket(
      config.requestsPerSec ?? defaults.requestsPerSec,
      config.requestBurst ?? defaults.requestBurst,
      `tokens[${name}]`,
    );
  }

  allows(scope: ApiScope): boolean {
    return this.scopes.has(scope);
  }
}

/** The configured tokens, looked up by hash. */
export class AccessControl {
  private readonly byHash = new Map<string, AccessGrant>();

  constructor(configs: readonly AccessTokenConfig[], defaults: AccessDefaults) {
    configs.forEach((c, i) => {
      if (typeof c.token !== "string" || c.token.length < TOKEN_LENGTH_MIN || /\s/.test(c.token)) {
        throw new ConfigError(
          `tokens[${i}].token`,
          `must be at least ${TOKEN_LENGTH_MIN} characters without whitespace (generate one with: openssl rand -base64 24)`,
        );
      }
      const hash = tokenHash(c.token);
      if (this.byHash.has(hash)) throw new ConfigError(`tokens[${i}].token`, "is listed twice");
      this.byHash.set(hash, new AccessGrant(c.name ?? `token-${hash.slice(0, 8)}`, c, defaults));
    });
  }

  get size(): number {
    return this.byHash.size;
  }

  /** The grant of a presented token, or undefined when it is not one of ours. */
  lookup(token: string): AccessGrant | undefined {
    return token.length === 0 ? undefined : this.byHash.get(tokenHash(token));
  }
}

/** A token with every topic and scope, for a server started without configured tokens. */
export function generatedAccess(): AccessTokenConfig {
  return { token: randomBytes(24).toString("base64url"), name: "generated", topics: ["#"], scopes: ["*"] };
}

/** The cookie the dashboard's login sets (see {@link tokenCookie}). */
export const TOKEN_COOKIE = "lw_token";

/** The token of a request: `Authorization: Bearer …` first, else the `token` query parameter, else the {@link TOKEN_COOKIE} cookie. */
export function presentedToken(authorization: string, queryToken: string, cookieHeader = ""): string {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
  if (m !== null) return m[1];
  if (queryToken !== "") return queryToken;
  return cookieValue(cookieHeader, TOKEN_COOKIE);
}

/**
 * The Set-Cookie value that carries `token` for the dashboard (empty: clears it). HttpOnly: the
 * page's script cannot read it; SameSite=Strict: no other site's page sends it (no cross-site
 * request forgery on the POST routes); Path=/: the API and the WebSocket both get it.
 */
export function tokenCookie(token: string): string {
  const value = token === "" ? "" : encodeURIComponent(token);
  return `${TOKEN_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/${token === "" ? "; Max-Age=0" : ""}`;
}

/** One cookie's value from a Cookie header (`a=1; b=2`), URL-decoded; "" when absent or undecodable. */
export function cookieValue(header: string, name: string): string {
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return "";
    }
  }
  return "";
}

/**
 * A token bucket (capacity `burst`, refilled at `ratePerSec`): `take()` returns 0 when a request
 * may pass, else the milliseconds until one token is back (the Retry-After).
 */
export class TokenBucket {
  private tokens: number;
  private updatedMs = -1;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    option = "rate limit",
  ) {
    if (!(ratePerSec > 0 && Number.isFinite(ratePerSec)))
      throw new ConfigError(`${option}.requestsPerSec`, `must be > 0, got ${ratePerSec}`);
    if (!(burst >= 1 && Number.isFinite(burst))) throw new ConfigError(`${option}.requestBurst`, `must be ≥ 1, got ${burst}`);
    this.tokens = burst;
  }

  take(nowMs: number = performance.now()): number {
    if (this.updatedMs >= 0) this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.updatedMs) * this.ratePerSec) / 1000);
    this.updatedMs = nowMs;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return ((1 - this.tokens) * 1000) / this.ratePerSec;
  }
}

function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function resolveScopes(name: string, patterns: readonly string[]): ReadonlySet<ApiScope> {
  const out = new Set<ApiScope>();
  for (const p of patterns) {
    const [area, access] = p === "*" ? ["*", "*"] : p.split(":");
    const hits = API_SCOPES.filter((s) => {
      const [a, x] = s.split(":");
      return (area === "*" || area === a) && (access === "*" || access === x);
    });
    if (hits.length === 0)
      throw new ConfigError(
        `tokens[${name}].scopes`,
        `"${p}" matches no scope; scopes are ${API_SCOPES.join(", ")} (patterns: <area>:*, *:read, *)`,
      );
    for (const s of hits) out.add(s);
  }
  return out;
}
