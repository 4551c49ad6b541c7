import type { Dispatcher } from 'undici';

export interface BufferedResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** The upstream sent more than the cap allows for a JSON answer. */
export class ResponseTooLargeError extends RangeError {}

/**
 * One request whose (small, JSON) answer is collected into a single buffer through undici's handler API.
 * `Pool.request()` would wrap every answer in a Readable stream and read it back through the body mixin:
 * measured at about 25 µs of CPU per status poll, a tenth of what the gateway spends on one.
 *
 * A success must arrive whole and within `maxBytes`. An error status is what matters of an error answer, so
 * its body is kept only up to `maxBytes`, and a body cut short (too long, or the connection dropped after the
 * status line) still resolves with the status and what was read.
 */
export function bufferedExchange(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<BufferedResponse> {
  return new Promise((resolve, reject) => {
    let statusCode = 0;
    let headers: BufferedResponse['headers'] = {};
    const chunks: Buffer[] = [];
    let total = 0;
    let onAbort: (() => void) | undefined;
    const settle = () => {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    };
    const collected = () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    const isError = () => statusCode >= 300;
    dispatcher.dispatch(options, {
      onRequestStart(controller) {
        if (!signal) return;
        if (signal.aborted) return controller.abort(signal.reason as Error);
        onAbort = () => controller.abort(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
      },
      onResponseStart(_controller, status, responseHeaders) {
        statusCode = status;
        headers = responseHeaders;
      },
      onResponseData(controller, chunk) {
        total += chunk.length;
        if (total > maxBytes) return controller.abort(new ResponseTooLargeError(`upstream answer exceeds ${maxBytes} bytes`));
        chunks.push(chunk);
      },
      onResponseEnd() {
        settle();
        resolve({ statusCode, headers, body: collected() });
      },
      onResponseError(_controller, err) {
        settle();
        if (isError()) resolve({ statusCode, headers, body: collected() });
        else reject(err);
      },
    });
  });
}
