import type { DocumentsService } from '../documents/types.js';
import type { SweepOptions, SweepResult } from '../storage/storage-sweep.js';
import type { Tenant } from '../tenants/types.js';
import type { Telemetry } from './telemetry.js';

/**
 * A tenant's documents service whose uploads and downloads are reported (spans, metrics, channel messages);
 * the service itself when instrumentation is off. A download's operation ends when its body stream is
 * handed over, not when it has been read.
 * @internal
 */
export function instrumentDocuments(telemetry: Telemetry | undefined, tenant: Tenant, service: DocumentsService): DocumentsService {
  if (!telemetry) return service;
  const where = { tenantId: tenant.id, databaseName: tenant.databaseName, server: tenant.server };
  return {
    upload: (input) =>
      telemetry.run('documents.upload', where, async (op) => {
        const document = await service.upload(input);
        op.set({ documentId: document.id, sizeBytes: document.sizeBytes, deduplicated: document.deduplicated });
        return document;
      }),
    download: (id) =>
      telemetry.run('documents.download', where, async (op) => {
        const download = await service.download(id);
        op.set({ documentId: download.document.id, sizeBytes: download.document.sizeBytes });
        return download;
      }),
    get: (id) => service.get(id),
    list: (options) => service.list(options),
    url: (id, options) => service.url(id, options),
    rename: (id, filename) => service.rename(id, filename),
    delete: (id) => service.delete(id),
  };
}

/** What `platform.storage` does. */
interface Sweeper {
  sweep(options?: SweepOptions): Promise<SweepResult>;
}

/** `platform.storage` whose sweeps are reported. @internal */
export function instrumentStorage(telemetry: Telemetry, storage: Sweeper): Sweeper {
  return {
    sweep: (options?: SweepOptions) =>
      telemetry.run('storage.sweep', typeof options?.tenantId === 'string' ? { tenantId: options.tenantId } : {}, async (op) => {
        const result = await storage.sweep(options);
        op.set({ objectsDeleted: result.objectsDeleted, uploadsAborted: result.uploadsAborted });
        return result;
      }),
  };
}
