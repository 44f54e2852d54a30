import { PlatformContext } from './platform-context.js';
import { resolveOptions, type PlatformOptions } from './options.js';

/** What {@link createPlatform} returns: the whole API of one multi-tenant platform. */
export interface Platform extends AsyncDisposable {
  /**
   * Creates the main database if it is missing, migrates it and prepares tenant templates.
   * Idempotent; safe when several processes call it at once.
   */
  init(): Promise<void>;
  /**
   * Ends every pool the platform opened. Idempotent: every call returns the same promise.
   * Afterwards every call rejects with CLOSED.
   */
  close(): Promise<void>;
}

class PlatformImpl implements Platform {
  readonly #ctx: PlatformContext;
  #closing: Promise<void> | undefined;

  constructor(ctx: PlatformContext) {
    this.#ctx = ctx;
  }

  async init(): Promise<void> {
    this.#ctx.assertOpen();
    await this.#ctx.main.query('SELECT 1');
  }

  close(): Promise<void> {
    this.#closing ??= this.#ctx.shutdown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Creates a platform. Synchronous and opens nothing: connections are made on first use.
 * Bad options throw a VALIDATION {@link TenantDbError} at once.
 *
 * @example
 * ```ts
 * const platform = createPlatform({
 *   mainUrl: 'postgres://postgres@127.0.0.1:5432/saas_platform',
 *   s3: { bucket: 'tenantdb' },
 * });
 * await platform.init();
 * ```
 */
export function createPlatform(options: PlatformOptions): Platform {
  return new PlatformImpl(new PlatformContext(resolveOptions(options)));
}

