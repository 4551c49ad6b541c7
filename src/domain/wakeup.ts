/** A sleep that ends early when woken: a background loop waits on it for its next turn or for news. */
export class Wakeup {
  private wake: (() => void) | undefined;
  private woken = false;

  /** Resolves after `ms`, or at once if woken since the last sleep ended, or when woken meanwhile. */
  sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    }).finally(() => {
      this.wake = undefined;
      this.woken = false;
    });
  }

  wakeUp(): void {
    if (this.wake) this.wake();
    else this.woken = true;
  }
}
