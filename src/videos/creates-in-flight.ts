import { shuttingDown } from '../domain/errors.js';

const ignore = () => undefined;

/**
 * The creates of this process that are with the upstream, for the drain. A create's answer is its own
 * outcome, unless the drain answers first (`answerNow`): the client then gets an error with
 * `x-should-retry: false` instead of a dropped connection (which the SDKs retry, starting a second paid job),
 * while the create itself runs on, so that a job the upstream accepts before the process ends is still
 * recorded, and one refused or cut off is refunded.
 */
export class CreatesInFlight {
  private readonly running = new Set<Promise<void>>();
  private readonly interrupts = new Set<() => void>();
  private answered = false;

  /** Set once the drain has answered: no create may begin an upstream call any more. */
  get closing(): boolean {
    return this.answered;
  }

  /** The answer for the client of a create whose upstream call has begun (`outcome`). */
  run<T>(outcome: Promise<T>): Promise<T> {
    const settled = outcome.then(ignore, ignore);
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return new Promise<T>((resolve, reject) => {
      const interrupt = () => reject(shuttingDown(true));
      this.interrupts.add(interrupt);
      void outcome.then(resolve, reject).finally(() => this.interrupts.delete(interrupt));
    });
  }

  /** The drain's moment: every create still waiting is answered now. */
  answerNow(): void {
    this.answered = true;
    for (const interrupt of this.interrupts) interrupt();
    this.interrupts.clear();
  }

  /** Resolves once every create has finished with the upstream and the store. */
  async settled(): Promise<void> {
    await Promise.all(this.running);
  }
}
