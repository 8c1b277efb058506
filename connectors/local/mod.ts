/** connectors/local: the names other folders use. Import from here, never from a file inside. */
export { commandInstalled, terminate } from "./child-process.js";
export { CLICKHOUSE_USERS_XML, clickhouseConfigXml } from "./clickhouse-config.js";
export { type ClickHouseServer, startClickHouseServer } from "./clickhouse-server.js";
export { freePort, type LocalServerOptions, type NatsServer, serverAvailable, startNatsServer } from "./nats-server.js";
