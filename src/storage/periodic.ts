/**
 * A background pass run every `intervalMs`, at once again while it says more work is waiting, and at once
 * when woken (a video just completed, or was just deleted). One pass at a time; `stop` waits for it.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private wakeAgain = false;
  private stopped = true;

  constructor(
    private readonly pass: () => Promise<boolean>,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  wake(): void {
    if (this.stopped) return;
    if (this.running) this.wakeAgain = true;
    else this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), delayMs);
    this.timer.unref();
  }

  private run(): void {
    this.wakeAgain = false;
    this.running = this.pass().then(
      (more) => more,
      (err: unknown) => {
        this.onError(err);
        return false;
      },
    ).then((more) => {
      this.running = undefined;
      if (!this.stopped) this.schedule(more || this.wakeAgain ? 0 : this.intervalMs);
    });
  }
}
