import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { RequestError } from '@hono/node-server';
import type { Logger } from '../observability/logger.js';
import { newRequestId } from './context.js';
import { ApiError, malformedRequest, serverError, toErrorBody } from '../domain/errors.js';

/**
 * Answers to requests that never reach the app: node:http refuses them while parsing ('clientError') or
 * would answer them itself (CONNECT, a missing Host, an unknown Expect), or @hono/node-server cannot make a
 * URL of them (a backslash in the path, a bad Host). Like every other answer they carry the OpenAI error
 * shape and an x-request-id, and the connection closes after them.
 */
export class TransportErrors {
  constructor(private readonly logger: Logger) {}

  /** node:http's 'clientError': no request object exists, so the answer is written to the socket as is. */
  readonly onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    // Mid-response (a pipelined request gone bad) or half-closed, nothing more can be said on this socket.
    const busy = (socket as Duplex & { _httpMessage?: unknown })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    const e =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? malformedRequest('The request headers are larger than the gateway accepts.', 431, 'headers_too_large')
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? malformedRequest('The request did not arrive in time.', 408, 'request_timeout')
          : malformedRequest('The request is not valid HTTP.');
    this.writeRaw(socket, e, err.code);
  };

  /** node:http's 'connect': a CONNECT request (this is not a proxy), which would otherwise get no answer at all. */
  readonly onConnect = (_req: IncomingMessage, socket: Duplex): void => {
    this.writeRaw(socket, new ApiError({ status: 405, type: 'invalid_request_error', message: 'CONNECT is not supported.', code: 'method_not_allowed' }), 'connect');
  };

  /** @hono/node-server's errorHandler: the request had no URL it could build, or (a bug) the app threw. */
  readonly onRequestError = (err: unknown): Response => {
    const malformed = err instanceof RequestError;
    if (!malformed) this.logger.error({ err: { message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'unhandled error outside the app');
    const e = malformed ? malformedRequest(`The request's target or Host header is invalid (${err.message}).`) : serverError();
    const { requestId, body } = this.render(e, malformed ? err.message : 'internal');
    return new Response(body, { status: e.status, headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...e.headers } });
  };

  /** HTTP/1.1 requires a Host header (node:http would answer an empty 400 itself). */
  lacksHost(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.headers.host !== undefined || req.httpVersion !== '1.1') return false;
    this.writeTo(res, malformedRequest('An HTTP/1.1 request must carry a Host header.'), 'missing host');
    return true;
  }

  /** node:http's 'checkExpectation': an `Expect` other than 100-continue. */
  readonly onCheckExpectation = (_req: IncomingMessage, res: ServerResponse): void => {
    this.writeTo(res, malformedRequest('Only "Expect: 100-continue" is supported.', 417, 'expectation_failed'), 'expectation');
  };

  private writeRaw(socket: Duplex, e: ApiError, reason: string | undefined): void {
    const { requestId, body } = this.render(e, reason);
    const head = [`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(body)}`, `x-request-id: ${requestId}`, 'connection: close'];
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  }

  private writeTo(res: ServerResponse, e: ApiError, reason: string): void {
    const { requestId, body } = this.render(e, reason);
    res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, ...e.headers });
    res.end(body);
  }

  /** The request log's line for such a request: its id, status and why (never the raw bytes, which may hold a key). */
  private render(e: ApiError, reason: string | undefined): { requestId: string; body: string } {
    const requestId = newRequestId();
    this.logger.info({ requestId, status: e.status, reason }, 'malformed request');
    return { requestId, body: JSON.stringify(toErrorBody(e)) };
  }
}
