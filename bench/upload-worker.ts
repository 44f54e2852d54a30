/**
 * One measured upload in a process of its own, forked by the upload benchmark: the allocator keeps
 * what a process once grew to, so two uploads in one process would share (and hide) their peak RSS.
 * After a warm-up upload of two parts (the SDK's multipart code loaded and compiled, sockets open),
 * uploads `bytes` either through `ctx.documents.upload` or through a bare lib-storage `Upload`, sampling
 * RSS every 50 ms, and reports time, RSS and CPU.
 */
import { fork } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { PlatformOptions } from '../src/index.js';
import { createPlatform } from './library.js';
import { now, sampleRss, seededRandom, settle, type RssReport } from './measure.js';

const MIB = 1024 * 1024;

/** What the parent asks for. */
export interface UploadJob {
  side: 'ours' | 'baseline';
  bytes: number;
  /** Same seed, same bytes. */
  seed: number;
  partSize: number;
  queueSize: number;
  /** ours: the platform, tenant, uploader and file name; the document is deleted afterwards unless `keep`. */
  platform: PlatformOptions;
  tenantId: string;
  userId: string;
  filename: string;
  keep: boolean;
  /** baseline: the key (deleted afterwards). */
  key: string;
  /** ours: upload the bytes from a file written first (`{ path }`, hashed before anything is sent). */
  fromFile?: boolean;
}

/** What the worker reports. */
export interface UploadOutcome {
  ms: number;
  rss: RssReport;
  /** CPU seconds of the worker process during the upload. */
  cpuSeconds: number;
  documentId?: string;
  deduplicated?: boolean;
  /** ours: bytes the upload handed to S3 (its onProgress). */
  bytesSent?: number;
}

/** `count` buffers of 1 MiB of pseudo-random bytes from `seed`: the same in every process. */
export function seededBuffers(count: number, seed: number): Buffer[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const words = new Uint32Array(MIB / 4);
    for (let i = 0; i < words.length; i++) words[i] = Math.floor(random() * 4294967296);
    return Buffer.from(words.buffer);
  });
}

/** `bytes` bytes as 1 MiB chunks drawn (by a seeded sequence) from a few random buffers. */
export async function* generate(buffers: Buffer[], bytes: number, seed: number): AsyncGenerator<Buffer> {
  const random = seededRandom(seed);
  for (let sent = 0; sent < bytes; sent += MIB) {
    const chunk = buffers[Math.floor(random() * buffers.length)]!;
    yield bytes - sent < MIB ? chunk.subarray(0, bytes - sent) : chunk;
  }
}

/** Runs `job` in a fresh worker process and resolves with its outcome. */
export function runUploadJob(job: UploadJob): Promise<UploadOutcome> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let outcome: UploadOutcome | undefined;
    let failure: string | undefined;
    child.on('message', (msg: { ok: true; outcome: UploadOutcome } | { ok: false; error: string }) => {
      if (msg.ok) outcome = msg.outcome;
      else failure = msg.error;
    });
    child.once('exit', (code) => {
      if (outcome) resolve(outcome);
      else reject(new Error(`upload worker failed (${code}): ${failure ?? 'no result'}`));
    });
    child.send(job);
  });
}

async function work(job: UploadJob): Promise<UploadOutcome> {
  const buffers = seededBuffers(4, job.seed);
  // Two parts: the smallest upload that takes the multipart path.
  const warmUpBytes = job.partSize + MIB;
  if (job.side === 'ours') {
    const platform = createPlatform(job.platform);
    try {
      await platform.init();
      const upload = (filename: string, bytes: number) =>
        platform.withTenant(job.tenantId, (ctx) =>
          ctx.documents.upload({ filename, body: generate(buffers, bytes, job.seed + 1), userId: job.userId }),
        );
      const warm = await upload(`${job.filename}.warm-up`, warmUpBytes);
      await platform.withTenant(job.tenantId, (ctx) => ctx.documents.delete(warm.id));
      await settle(300);
      let file: string | undefined;
      if (job.fromFile) {
        file = path.join(await mkdtemp(path.join(os.tmpdir(), 'tenantdb-bench-')), 'body.bin');
        await pipeline(Readable.from(generate(buffers, job.bytes, job.seed), { objectMode: false }), createWriteStream(file));
      }
      let bytesSent = 0;
      const rss = sampleRss(50);
      const cpu = process.cpuUsage();
      const t0 = now();
      const doc = await platform
        .withTenant(job.tenantId, (ctx) =>
          ctx.documents.upload({
            filename: job.filename,
            body: file ? { path: file } : generate(buffers, job.bytes, job.seed),
            userId: job.userId,
            onProgress: (p) => (bytesSent = p.bytesSent),
          }),
        )
        .finally(() => file && rm(path.dirname(file), { recursive: true, force: true }));
      const ms = now() - t0;
      const used = process.cpuUsage(cpu);
      const report = rss.stop();
      if (!job.keep) await platform.withTenant(job.tenantId, (ctx) => ctx.documents.delete(doc.id));
      return { ms, rss: report, cpuSeconds: (used.user + used.system) / 1e6, documentId: doc.id, deduplicated: doc.deduplicated, bytesSent };
    } finally {
      await platform.close();
    }
  }
  const s3 = job.platform.s3;
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region ?? 'us-east-1',
    forcePathStyle: true,
    ...(s3.credentials && { credentials: s3.credentials }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    const upload = (key: string, bytes: number, seed: number) =>
      new Upload({
        client,
        params: { Bucket: s3.bucket, Key: key, Body: Readable.from(generate(buffers, bytes, seed), { objectMode: false }) },
        partSize: job.partSize,
        queueSize: job.queueSize,
        leavePartsOnError: false,
      }).done();
    await upload(`${job.key}.warm-up`, warmUpBytes, job.seed + 1);
    await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${job.key}.warm-up` }));
    await settle(300);
    const rss = sampleRss(50);
    const cpu = process.cpuUsage();
    const t0 = now();
    await upload(job.key, job.bytes, job.seed);
    const ms = now() - t0;
    const used = process.cpuUsage(cpu);
    const report = rss.stop();
    await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: job.key }));
    return { ms, rss: report, cpuSeconds: (used.user + used.system) / 1e6 };
  } finally {
    client.destroy();
  }
}

// As the forked worker: one job, one answer, then exit.
if (process.send !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.once('message', (job: UploadJob) => {
    work(job).then(
      (outcome) => process.send!({ ok: true, outcome }, () => process.exit(0)),
      (err: unknown) => process.send!({ ok: false, error: (err as Error)?.stack ?? String(err) }, () => process.exit(1)),
    );
  });
  process.on('disconnect', () => process.exit(1));
}
