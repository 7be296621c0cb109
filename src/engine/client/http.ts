/**
 * The smallest HTTP client the CLI needs to talk to pierd: HTTP/1.0 over the unix socket, one
 * request per connection, the response body read until the server closes. Loading node:http costs
 * ~11 ms of CPU per command, a third of a `pier ps`; this is ~2 ms. (Uploads of unknown length —
 * `pier cp` into a container — still use node:http, loaded only then.)
 * HTTP/1.0 also means pierd's Node server never chunks the answer, so streams arrive as written.
 */
import { connect, type Socket } from 'node:net';
import { PierError } from '../../common/errors.ts';

export interface RawResponse {
  statusCode: number;
  headers: Record<string, string>;
  /** The body: the socket itself, positioned after the headers. */
  body: Socket;
}

/**
 * One request. `signal` ends it at any point: before the answer the promise rejects with an
 * AbortError, after it the body socket is destroyed with one (a reader of it then throws).
 */
export function rawRequest(socketPath: string, method: string, path: string, body?: string, signal?: AbortSignal, opts: { upgrade?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(abortError()); return; }
    const sock = connect(socketPath);
    let head = Buffer.alloc(0);
    let done = false;
    const fail = (err: unknown) => { if (!done) { done = true; sock.destroy(); reject(err); } };
    if (signal) {
      const onAbort = () => { if (done) sock.destroy(abortError()); else fail(abortError()); };
      signal.addEventListener('abort', onAbort, { once: true });
      sock.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    sock.once('error', fail);
    sock.once('connect', () => {
      const payload = body === undefined ? '' : body;
      // An upgrade (a hijacked exec or attach stream, docker's shape) is HTTP/1.1; the answer is
      // 101 and the socket then carries frames both ways, or an error that ends with the connection.
      const lines = opts.upgrade ? [`${method} ${path} HTTP/1.1`, 'Host: pierd', 'Connection: Upgrade', 'Upgrade: tcp'] : [`${method} ${path} HTTP/1.0`, 'Host: pierd'];
      if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(payload)}`);
      sock.write(`${lines.join('\r\n')}\r\n\r\n${payload}`);
    });
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 64 * 1024) fail(new PierError('pierd sent an oversized response header'));
        return;
      }
      sock.off('data', onData);
      sock.pause();
      const [status, ...fields] = head.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(status);
      if (!m) { fail(new PierError(`pierd sent a malformed response: ${JSON.stringify(status)}`)); return; }
      const headers: Record<string, string> = {};
      for (const f of fields) {
        const i = f.indexOf(':');
        if (i > 0) headers[f.slice(0, i).trim().toLowerCase()] = f.slice(i + 1).trim();
      }
      const rest = head.subarray(end + 4);
      if (rest.length) sock.unshift(rest);
      done = true;
      sock.off('error', fail);
      resolve({ statusCode: Number(m[1]), headers, body: sock });
    };
    sock.on('data', onData);
    sock.once('end', () => fail(new PierError('pierd closed the connection without an answer')));
  });
}

function abortError(): Error {
  return Object.assign(new Error('the request was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}
