/**
 * Configuration of a local, throw-away clickhouse-server (the demo's and the tests'): loopback
 * only, the given ports, every path under one directory, user `default` without a password from
 * 127.0.0.1. Works on 18.16 (`<yandex>` root, which current servers still read).
 */

/**
 * config.xml for a server whose files all live under `dir`. `name` is its macro `linewatch_server`
 * (system.macros): how the launcher tells its own server from another one on the same port.
 */
export function clickhouseConfigXml(dir: string, httpPort: number, tcpPort: number, name: string): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/log/clickhouse-server.log</log>
    <errorlog>${dir}/log/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <macros><linewatch_server>${name}</linewatch_server></macros>
</yandex>
`;
}

/**
 * users.xml: the `default` user, loopback only, no quotas. `background_pool_size` 2 (default 16;
 * a profile setting on 18.16, still read from the default profile by current servers): on a
 * small machine that shares its cores with the engine, sixteen merge threads make sixteen small
 * merges at once, each rewriting every column; two merge more parts at a time, later, rewriting
 * each row fewer times (docs/clickhouse.md, "A small machine").
 */
export const CLICKHOUSE_USERS_XML = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
      <background_pool_size>2</background_pool_size>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;
