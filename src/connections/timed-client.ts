import pg from 'pg';
import { connectFailure, isMissingDatabase } from '../util/pg-errors.js';
import { redactUrl } from '../util/redact.js';
import { ScramKeyClient } from '../util/scram.js';

type ConnectCallback = ((err: Error) => void) | ((err: null, client: pg.Client) => void);

/**
 * A `pg.Client` whose connect (TCP, TLS, startup, authentication, up to the server's first ReadyForQuery)
 * is bounded by `connectTimeoutMs`, and whose connect failures are {@link TenantDbError}s: UNAVAILABLE for
 * an unreachable, hung or overloaded server, DATABASE for a refusal for good (a bad password). A database
 * that does not exist is reported as the driver (or pooler) says it.
 *
 * SCRAM keys are derived once per credentials (see ScramKeyClient). Given to `pg.Pool` as its `Client`; pg-pool's own `connectionTimeoutMillis` (which bounds the wait for a
 * free client as well) is not what bounds the connect.
 * @internal
 */
export function timedClientClass(connectTimeoutMs: number, what: string): new (config?: pg.ClientConfig) => pg.Client {
  return class TimedClient extends ScramKeyClient {
    readonly #what: string;

    constructor(config?: pg.ClientConfig) {
      // Copy with descriptors: pg-pool hides `password` as a non-enumerable property, which a spread would drop.
      const own = (config ? Object.defineProperties({}, Object.getOwnPropertyDescriptors(config)) : {}) as pg.ClientConfig;
      own.connectionTimeoutMillis = connectTimeoutMs;
      super(own);
      this.#what = what;
      // Between its connect and pg-pool's listener (added once the connect's callback has run), and while it
      // is checked out between two queries, nothing else listens: a server that ends the session then (a
      // restart sends ReadyForQuery and the FATAL in one read) must not crash the host. The failure still
      // reaches the next query on it, and pg-pool drops it.
      this.on('error', () => {});
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: ConnectCallback): void;
    override connect(callback?: ConnectCallback): Promise<pg.Client> | void {
      const connecting = super.connect().then(
        () => this,
        (err: unknown) => {
          // A missing database is left as the driver reports it: callers that create it look for that.
          throw isMissingDatabase(err) ? err : connectFailure(err, this.#what);
        },
      );
      if (!callback) return connecting;
      // Outside the promise chain, so that a throwing callback is not turned into an unhandled rejection.
      connecting.then(
        () => process.nextTick(callback as (err: null, client: pg.Client) => void, null, this),
        (err: Error) => process.nextTick(callback as (err: Error) => void, err),
      );
    }
  };
}

/**
 * Lends one dedicated connection for a whole migration command. The engine calls `release()` in
 * `finally`, with `destroy = true` when the connection is broken, so a pool must not reuse it.
 */
export type Connector = () => Promise<{ client: pg.ClientBase; release(destroy?: boolean): void | Promise<void> }>;

/**
 * A connector that opens one fresh connection on `url` per command, its connect bounded by
 * `connectTimeoutMs` (default 10 000; UNAVAILABLE past it), and ends it afterwards. Outside every pool, so
 * a migration never waits for a pooled connection.
 */
export function clientConnector(url: string, connectTimeoutMs = 10_000): Connector {
  return async () => {
    // A connection that dies is reported by the query that fails: openClient listens for 'error'.
    const client = await openClient(url, connectTimeoutMs);
    return { client, release: () => client.end().catch(() => {}) };
  };
}

/**
 * Opens one `pg.Client` on `url` outside any pool, its connect bounded by `connectTimeoutMs`, with an
 * `'error'` listener so that a connection that dies while idle never crashes the host (the next query on
 * it reports the failure). Connect failures are {@link TenantDbError}s as {@link timedClientClass} says.
 * @internal
 */
export async function openClient(url: string, connectTimeoutMs: number): Promise<pg.Client> {
  const Client = timedClientClass(connectTimeoutMs, redactUrl(url));
  const client = new Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return client;
}
