/** A counter of free slots; `tryAcquire` never waits, so overload is refused instead of queued. */
export class Semaphore {
  private used = 0;
  constructor(private readonly size: number) {}

  tryAcquire(): (() => void) | undefined {
    if (this.used >= this.size) return undefined;
    this.used++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.used--;
      }
    };
  }
}
