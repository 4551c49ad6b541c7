import { setTimeout as sleep } from 'node:timers/promises';

/** Up to this much of the budget may be spent ahead: short videos copy at full speed. */
const BURST_MS = 1000;

/**
 * A byte budget per second shared by every copy of a process: each chunk takes its bytes from the budget
 * and, when that runs into debt past the burst, waits until the rate has paid it back. Backpressure does
 * the rest: a copy whose chunk waits reads no more from its upstream.
 */
export class Bandwidth {
  private debtMs = 0;
  private at = performance.now();

  /** `bytesPerSec` 0: unbounded. */
  constructor(private readonly bytesPerSec: number) {}

  /** Resolves when a chunk of `bytes` may pass. */
  async take(bytes: number): Promise<void> {
    if (this.bytesPerSec <= 0) return;
    const now = performance.now();
    // Time passed since the last chunk pays debt back; unused budget is not saved up beyond zero.
    this.debtMs = Math.max(0, this.debtMs - (now - this.at)) + (bytes / this.bytesPerSec) * 1000;
    this.at = now;
    if (this.debtMs > BURST_MS) await sleep(this.debtMs - BURST_MS);
  }
}
