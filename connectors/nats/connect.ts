/** The NATS client's `connect`, with a server out of reach as a typed error that names the address. */
import { type ConnectionOptions, connect, type NatsConnection } from "nats";
import { ConnectError } from "../errors.js";

/** Throws {@link ConnectError} when the first connection fails (refused, unknown host, timeout, authorisation). */
export async function connectNats(options: ConnectionOptions): Promise<NatsConnection> {
  try {
    return await connect(options);
  } catch (cause) {
    const address = [options.servers ?? "nats://127.0.0.1:4222"].flat().join(",");
    throw new ConnectError("NATS", address, cause instanceof Error ? cause.message : String(cause), { cause });
  }
}
