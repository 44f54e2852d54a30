import type { FleetProgressEvent, FleetWaveEvent, MoveProgressEvent } from '../index.js';
import { errorLine } from './output.js';

/** Where progress goes: stderr, or a test's stand-in. */
export interface ProgressStream {
  write(text: string): unknown;
  /** True on a terminal: a redrawn bar instead of one line per tenant. */
  isTTY?: boolean;
  /** Terminal width, when known. */
  columns?: number;
}

/** Shows the progress of a fleet migration. */
export interface FleetProgress {
  /** Pass as `onProgress` of `migrations.tenants.up`. */
  onProgress(event: FleetProgressEvent): void;
  /** Pass as `onWave`: a line per wave started or ended (see {@link waveLine}). */
  onWave(event: FleetWaveEvent): void;
  /** Ends the bar's line (on a terminal); call once the run returned. */
  finish(): void;
}

const BAR_WIDTH = 24;

/**
 * One line of a fleet run's wave starting or ending, e.g. `wave 1/3: 5 tenants` and
 * `wave 1/3 done: 4 succeeded, 1 failed, 0 skipped; halted (maxFailures): no later wave starts`.
 */
export function waveLine(event: FleetWaveEvent): string {
  const which = `wave ${event.wave}/${event.waves}`;
  if (event.type === 'wave-start') return `${which}: ${event.tenants} tenant${event.tenants === 1 ? '' : 's'}`;
  const counts = `${event.succeeded ?? 0} succeeded, ${event.failed ?? 0} failed, ${event.skipped ?? 0} skipped`;
  return `${which} done: ${counts}${event.haltedBy ? `; halted (${event.haltedBy}): no later wave starts` : ''}`;
}

/**
 * Progress of a fleet migration on `stream`: on a terminal (`isTTY`) one bar redrawn in place
 * (`label [#####-----] done/total, N failed`); otherwise one plain line per tenant finished, which
 * reads well in CI logs. `scrub` hides secrets in error messages.
 */
export function createFleetProgress(stream: ProgressStream, label: string, scrub: (text: string) => string = (t) => t): FleetProgress {
  let failed = 0;
  let drawn = false;
  let last: FleetProgressEvent | undefined;

  const draw = (event: FleetProgressEvent): void => {
    const ratio = event.total === 0 ? 1 : event.done / event.total;
    const filled = Math.round(ratio * BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
    const failures = failed > 0 ? `, ${failed} failed` : '';
    let line = `${label} [${bar}] ${event.done}/${event.total}${failures}`;
    if (stream.columns && line.length >= stream.columns) line = line.slice(0, stream.columns - 1);
    stream.write(`\r\x1b[2K${line}`);
    drawn = true;
  };

  return {
    onProgress(event) {
      if (event.type === 'failure') failed++;
      last = event;
      if (stream.isTTY) {
        draw(event);
        return;
      }
      if (event.type === 'start') return;
      const who = event.databaseName || event.tenantId;
      const where = `[${event.done}/${event.total}]`;
      if (event.type === 'success') {
        const applied = event.applied ?? [];
        stream.write(`${where} ok ${who}${applied.length > 0 ? ` (applied ${applied.join(', ')})` : ' (up to date)'}\n`);
      } else if (event.type === 'skip') {
        stream.write(`${where} skipped ${who} (not ready)\n`);
      } else {
        stream.write(`${where} FAILED ${who}: ${event.error ? errorLine(event.error, scrub) : 'failed'}\n`);
      }
    },
    onWave(event) {
      // On a terminal the line goes above the bar, which is drawn again below it.
      stream.write(`${stream.isTTY && drawn ? '\r\x1b[2K' : ''}${waveLine(event)}\n`);
      if (stream.isTTY && last) draw(last);
    },
    finish() {
      if (stream.isTTY && drawn) {
        if (last) draw(last);
        stream.write('\n');
      }
    },
  };
}

/**
 * One line of a move's progress (`tenants move`), e.g. `move: syncing 3/5 tables (logical)` or
 * `move: copied public.orders (1200 rows)`.
 */
export function moveProgressLine(event: MoveProgressEvent): string {
  const method = event.method ? ` (${event.method})` : '';
  if (event.phase === 'copying') return `move: copied ${event.table ?? '?'} (${event.rows ?? 0} rows)`;
  if (event.phase === 'syncing') return `move: syncing ${event.tablesDone ?? 0}/${event.tables ?? 0} tables${method}`;
  return `move: ${event.phase}${method}`;
}
