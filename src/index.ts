export { createPlatform } from './platform/platform.js';
export type { Platform } from './platform/platform.js';
export type { PlatformOptions, S3Options, PoolOptions, Logger } from './platform/options.js';
export { TenantDbError, isTenantDbError, ERROR_CODES, HTTP_STATUS } from './errors.js';
export type { TenantDbErrorCode } from './errors.js';
