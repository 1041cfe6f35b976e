/**
 * The progress bar: renderProgress is pure (amount, bar, percentage, rate, ETA, cut to the
 * terminal width); ProgressBar draws only on a terminal, not with --quiet/--no-progress, at most
 * once per interval, redraws in place with \r, and clears its line at the end.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fmtBytes, fmtDuration, ProgressBar, renderProgress, type ProgressStream } from './progress.js';

const MiB = 1 << 20;

describe('renderProgress', () => {
  it('bytes with a known total: amount / total, a bar, percentage, rate and ETA', () => {
    const line = renderProgress({ label: 'encrypt', done: 256 * MiB, total: 1024 * MiB, elapsedMs: 2000, unit: 'bytes' });
    assert.equal(line, `encrypt 256.0 MiB / 1.0 GiB [${'#'.repeat(6)}${'.'.repeat(18)}]  25% 128.0 MiB/s ETA 6s`);
  });

  it('the bar fills with the fraction done, and the end says done instead of an ETA', () => {
    const half = renderProgress({ label: 'decrypt', done: 50, total: 100, elapsedMs: 1000, unit: 'bytes' });
    assert.match(half, /\[#{12}\.{12}\]  50% 50 B\/s ETA 1s$/);
    const full = renderProgress({ label: 'decrypt', done: 100, total: 100, elapsedMs: 1000, unit: 'bytes' });
    assert.match(full, /\[#{24}\] 100% 100 B\/s done$/);
    // Never past 100%, even if more arrives than the size said (a file growing while read).
    assert.match(renderProgress({ label: 'x', done: 150, total: 100, elapsedMs: 1000, unit: 'bytes' }), /\[#{24}\] 100%/);
  });

  it('unknown total (stdin): amount and rate only, no bar and no ETA', () => {
    const line = renderProgress({ label: 'encrypt', done: 3 * MiB, elapsedMs: 1000, unit: 'bytes' });
    assert.equal(line, 'encrypt 3.0 MiB 3.0 MiB/s');
  });

  it('nothing done yet: no rate to divide by, so no ETA', () => {
    const line = renderProgress({ label: 'verify', done: 0, total: 10 * MiB, elapsedMs: 0, unit: 'bytes' });
    assert.equal(line, `verify 0 B / 10.0 MiB [${'.'.repeat(24)}]   0% 0 B/s`);
  });

  it('files (rewrap --all): counts, files/s and ETA', () => {
    const line = renderProgress({ label: 'rewrap', done: 3, total: 12, elapsedMs: 6000, unit: 'files' });
    assert.equal(line, `rewrap 3 / 12 files [${'#'.repeat(6)}${'.'.repeat(18)}]  25% 0.5 files/s ETA 18s`);
  });

  it('is cut to the terminal width, so a redraw with \\r never wraps', () => {
    const line = renderProgress({ label: 'encrypt', done: 256 * MiB, total: 1024 * MiB, elapsedMs: 2000, unit: 'bytes', columns: 30 });
    assert.equal(line.length, 29);
    assert.ok(line.startsWith('encrypt 256.0 MiB / 1.0 GiB'));
  });

  it('formats sizes and durations', () => {
    assert.deepEqual([fmtBytes(0), fmtBytes(1023), fmtBytes(1024), fmtBytes(1.5 * MiB), fmtBytes(3 * 1024 * MiB)], ['0 B', '1023 B', '1.0 KiB', '1.5 MiB', '3.0 GiB']);
    assert.deepEqual([fmtDuration(0), fmtDuration(0.2), fmtDuration(59), fmtDuration(61), fmtDuration(245), fmtDuration(7380)], ['0s', '1s', '59s', '1m01s', '4m05s', '2h03m']);
  });
});

describe('ProgressBar', () => {
  function tty(isTTY: boolean): ProgressStream & { written: string[] } {
    const written: string[] = [];
    return { isTTY, columns: 200, written, write: (s: string) => written.push(s) };
  }

  it('draws on a terminal, in place (\\r ... erase to end of line), at most once per interval, and clears at the end', () => {
    let now = 1000;
    const stream = tty(true);
    const bar = new ProgressBar('encrypt', 100, { stream, now: () => now, intervalMs: 200 });
    bar.update(10); // first update draws at once
    now += 50;
    bar.update(20); // too soon
    now += 200;
    bar.update(60);
    now += 100;
    bar.done(); // final state, then the line is erased
    assert.equal(stream.written.length, 4);
    assert.match(stream.written[0]!, /^\rencrypt 10 B \/ 100 B \[.*\]  10% .*\x1b\[K$/);
    assert.match(stream.written[1]!, /^\rencrypt 60 B \/ 100 B .* 60% /);
    assert.match(stream.written[2]!, /^\rencrypt 60 B \/ 100 B/);
    assert.equal(stream.written[3], '\r\x1b[K');
  });

  it('is silent when stderr is not a terminal, and with --quiet / --no-progress', () => {
    for (const [stream, quiet] of [[tty(false), false], [tty(true), true]] as const) {
      const bar = new ProgressBar('decrypt', 100, { stream, quiet, now: () => 0 });
      bar.update(50);
      bar.done();
      assert.equal(bar.enabled, false);
      assert.deepEqual(stream.written, []);
    }
  });

  it('clear() erases the line before other output; the next update draws again at once', () => {
    let now = 0;
    const stream = tty(true);
    const bar = new ProgressBar('rewrap', 4, { stream, now: () => now, unit: 'files' });
    bar.update(1);
    bar.clear();
    now += 10;
    bar.update(2);
    assert.equal(stream.written.length, 3);
    assert.equal(stream.written[0], `\rrewrap 1 / 4 files [${'#'.repeat(6)}${'.'.repeat(18)}]  25% 0.0 files/s\x1b[K`);
    assert.equal(stream.written[1], '\r\x1b[K');
    assert.match(stream.written[2]!, /^\rrewrap 2 \/ 4 files .* 50% 200\.0 files\/s ETA 1s/);
  });
});
