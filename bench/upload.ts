/**
 * Benchmark 5, upload: 1 GiB streamed (an async generator of 1 MiB chunks, length unknown) through
 * `ctx.documents.upload` against the same bytes through a bare `@aws-sdk/lib-storage` `Upload` with the
 * same part size and queue, to the same S3 server, alternated (ours, bare, bare, ours). Each measured
 * upload runs in a fresh process that samples its RSS every 50 ms; then the same gigabyte is uploaded
 * again, which must store nothing new.
 */
import { createHash, randomUUID } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import { ListObjectsCommand } from '@aws-sdk/client-s3';
import { tenantPrefix } from '../src/storage/object-keys.js';
import type { BenchEnv } from './bench-env.js';
import { alternate, median } from './measure.js';
import { fmt, type BenchResult } from './report.js';
import { generate, runUploadJob, seededBuffers, type UploadJob, type UploadOutcome } from './upload-worker.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
/** The library's S3 store defaults, given to the bare Upload too. */
const PART_SIZE = 8 * MIB;
// The library's defaults; both sides use the same.
const QUEUE_SIZE = 2;
const GOAL_RATIO = 0.9;
// Issue 11: RSS grows by at most partSize × (queueSize + 1) + 16 MiB during the upload (40 MiB at the defaults).
const GOAL_RSS = PART_SIZE * (QUEUE_SIZE + 1) + 16 * MIB;
const SEED = 7;

/**
 * CPU seconds per GiB that MD5 and SHA-256 of the benchmark's bytes cost on this machine, now: the least
 * any upload that hashes for deduplication adds to a bare one.
 */
async function hashingFloor(bytes: number): Promise<number> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const buffers = seededBuffers(4, SEED);
  const cpu = process.cpuUsage();
  for await (const chunk of generate(buffers, bytes, SEED)) {
    md5.update(chunk);
    sha256.update(chunk);
  }
  md5.digest();
  sha256.digest();
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / 1e6 / (bytes / GIB);
}

/** Runs benchmark 5. */
export async function runUpload(env: BenchEnv): Promise<BenchResult> {
  const notes: string[] = [];
  let bytes = env.quick ? 64 * MIB : GIB;
  if (env.servers.s3Kind === 's3rver' && !env.quick) {
    // s3rver keeps the parts and then the assembled object under the temp folder: about 3× the size at the peak.
    const fs = await statfs(os.tmpdir());
    if (fs.bavail * fs.bsize < 3 * bytes) {
      bytes = 64 * MIB;
      notes.push(`upload: only ${fmt((fs.bavail * fs.bsize) / GIB, 1)} GiB free under ${os.tmpdir()}: ran with 64 MiB instead of 1 GiB`);
    }
  }
  const pairs = 2; // ours, base, base, ours
  const [, tenant] = await env.tenants(2);
  const s3 = env.s3Client();
  const userId = randomUUID();
  let n = 0;
  const kept: string[] = [];
  // Every measured upload runs in a fresh process (see upload-worker.ts), so each side's peak RSS is its own.
  const job = (side: UploadJob['side'], keep: boolean, fromFile = false): UploadJob => ({
    fromFile,
    side,
    bytes,
    seed: SEED,
    partSize: PART_SIZE,
    queueSize: QUEUE_SIZE,
    platform: { ...env.options(), s3: { ...env.options().s3, partSize: PART_SIZE, queueSize: QUEUE_SIZE } },
    tenantId: tenant!.id,
    userId,
    filename: `big-${n}.bin`,
    keep,
    key: `${env.prefix}bench-baseline/${n++}`,
  });
  const run = async (side: UploadJob['side'], keep = false, fromFile = false): Promise<UploadOutcome> => {
    const outcome = await runUploadJob(job(side, keep, fromFile));
    if (keep && outcome.documentId) kept.push(outcome.documentId);
    return outcome;
  };

  try {
    // The last of ours is kept: the second upload of the same bytes below must reuse it.
    const measured = await alternate(pairs, (p) => run('ours', p === pairs - 1), () => run('baseline'));

    const second = await run('ours', true);
    // The same bytes once more, from a file: a body that can be read twice is hashed first, and nothing is sent.
    const fromFile = await run('ours', true, true);
    const tenantKeys = tenantPrefix(env.prefix, tenant!.id);
    const listed = await s3.send(new ListObjectsCommand({ Bucket: env.bucket, Prefix: tenantKeys }));
    const objects = listed.Contents?.length ?? 0;
    const files = await env.main.withTenant(tenant!.id, async (ctx) => {
      const f = await ctx.query<{ n: number }>('SELECT count(*)::int AS n FROM files');
      return f.rows[0]!.n;
    });
    const deduplicated = second.deduplicated === true;
    const dedupMet = objects === 1 && files === 1 && deduplicated && fromFile.deduplicated === true;

    const mibps = (ms: number): number => bytes / MIB / (ms / 1000);
    const oursRate = median(measured.a.map((r) => mibps(r.ms)));
    const baseRate = median(measured.b.map((r) => mibps(r.ms)));
    const rateRatio = median(measured.a.map((r, i) => measured.b[i]!.ms / r.ms));
    const oursRss = Math.max(...measured.a.map((r) => r.rss.growth));
    const baseRss = Math.max(...measured.b.map((r) => r.rss.growth));
    const oursCpu = median(measured.a.map((r) => r.cpuSeconds / (bytes / GIB)));
    const baseCpu = median(measured.b.map((r) => r.cpuSeconds / (bytes / GIB)));
    const floorCpu = await hashingFloor(bytes);
    const cpuGoal = (baseCpu + floorCpu) * 1.1;
    const size = bytes >= GIB ? `${fmt(bytes / GIB)} GiB` : `${fmt(bytes / MIB)} MiB`;
    return {
      id: 'upload',
      title: 'Upload',
      rows: [
        {
          figure: `${size} streamed: documents.upload vs bare lib-storage Upload (${PART_SIZE / MIB} MiB parts × ${QUEUE_SIZE})`,
          ours: `${fmt(oursRate, 1)} MiB/s`,
          baseline: `${fmt(baseRate, 1)} MiB/s`,
          ratio: rateRatio,
          ratioLabel: '× throughput',
          goal: `≥ ${GOAL_RATIO} × throughput`,
          met: rateRatio >= GOAL_RATIO,
        },
        {
          figure: 'peak RSS growth during the upload (sampled every 50 ms)',
          ours: `${fmt(oursRss / MIB, 1)} MiB`,
          baseline: `${fmt(baseRss / MIB, 1)} MiB`,
          ratio: oursRss / baseRss,
          ratioLabel: '× memory',
          goal: `≤ ${GOAL_RSS / MIB} MiB (partSize × (queueSize + 1) + 16 MiB)`,
          met: oursRss <= GOAL_RSS,
        },
        {
          figure: `client CPU per GiB (the uploading process); hashing floor (MD5 + SHA-256 of the same bytes here) ${fmt(floorCpu, 2)} s`,
          ours: `${fmt(oursCpu, 2)} s`,
          baseline: `${fmt(baseCpu, 2)} s`,
          ratio: oursCpu / baseCpu,
          ratioLabel: '× CPU',
          goal: `≤ (baseline + floor) × 1.1 = ${fmt(cpuGoal, 2)} s`,
          met: oursCpu <= cpuGoal,
        },
        {
          figure: `second upload of the same ${size}, streamed; then from a file ({ path })`,
          ours: `deduplicated: ${deduplicated}, ${fmt((second.bytesSent ?? 0) / MIB)} MiB sent; from a file: deduplicated: ${fromFile.deduplicated === true}, ${fmt((fromFile.bytesSent ?? 0) / MIB)} MiB sent; ${objects} object, ${files} file row`,
          baseline: '',
          ratio: null,
          goal: 'stores nothing new; from a file, sends nothing',
          met: dedupMet && fromFile.bytesSent === 0,
        },
      ],
      details: {
        bytes,
        partSize: PART_SIZE,
        queueSize: QUEUE_SIZE,
        chunkBytes: MIB,
        oursMs: measured.a.map((r) => r.ms),
        baselineMs: measured.b.map((r) => r.ms),
        oursRss: measured.a.map((r) => r.rss),
        baselineRss: measured.b.map((r) => r.rss),
        oursCpuSecondsPerGiB: measured.a.map((r) => r.cpuSeconds / (bytes / GIB)),
        baselineCpuSecondsPerGiB: measured.b.map((r) => r.cpuSeconds / (bytes / GIB)),
        secondUpload: { ms: second.ms, rss: second.rss, cpuSeconds: second.cpuSeconds, objects, files, deduplicated, bytesSent: second.bytesSent },
        fromFileUpload: { ms: fromFile.ms, cpuSeconds: fromFile.cpuSeconds, deduplicated: fromFile.deduplicated, bytesSent: fromFile.bytesSent },
        eachUploadInItsOwnProcess: true,
      },
      notes: [
        ...notes,
        ...(oursRss >= GOAL_RSS && baseRss >= GOAL_RSS
          ? [`upload: the bare lib-storage Upload with the same ${PART_SIZE / MIB} MiB × ${QUEUE_SIZE} parts also grows RSS past ${GOAL_RSS / MIB} MiB (${fmt(baseRss / MIB, 1)} MiB)`]
          : []),
        ...(rateRatio < GOAL_RATIO
          ? [`upload: ours spends ${fmt(oursCpu, 2)} CPU-s per GiB against ${fmt(baseCpu, 2)} for the bare Upload (MD5 + SHA-256 of every byte, for deduplication)`]
          : []),
      ],
    };
  } finally {
    // The big objects go: documents deleted last-reference-first delete their file and object.
    for (const id of kept.reverse()) {
      await env.main.withTenant(tenant!.id, (ctx) => ctx.documents.delete(id)).catch(() => {});
    }
    s3.destroy();
  }
}
