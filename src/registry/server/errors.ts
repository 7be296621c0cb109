/**
 * The distribution-spec error model: every failure the server answers is a `RegistryError` with one
 * of the spec's codes, an HTTP status and an optional `detail`, sent as `{"errors":[…]}`.
 */
import { PierError } from '../../common/errors.ts';

export type ErrorCode =
  | 'BLOB_UNKNOWN' | 'BLOB_UPLOAD_INVALID' | 'BLOB_UPLOAD_UNKNOWN' | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN' | 'MANIFEST_INVALID' | 'MANIFEST_UNKNOWN' | 'NAME_INVALID'
  | 'NAME_UNKNOWN' | 'SIZE_INVALID' | 'UNAUTHORIZED' | 'DENIED' | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS' | 'UNAVAILABLE';

const MESSAGES: Record<ErrorCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'the operation is unsupported',
  TOOMANYREQUESTS: 'too many requests',
  // distribution's own code (not the OCI spec's): a pull-through cache whose upstream failed
  UNAVAILABLE: 'service unavailable',
};

export class RegistryError extends PierError {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** extra response headers (e.g. `Range` and `Location` on a 416) */
  readonly headers: Record<string, string>;
  constructor(code: ErrorCode, status: number, opts: { message?: string; detail?: unknown; headers?: Record<string, string> } = {}) {
    super(opts.message ?? MESSAGES[code]);
    this.code = code;
    this.status = status;
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  /**
   * The spec's error JSON: `message` is the spec's text for the code; what exactly was wrong goes
   * in `detail` (`reason`, next to any detail fields given).
   */
  body(): string {
    const specific = this.message !== MESSAGES[this.code] ? this.message : undefined;
    let detail = this.detail;
    if (specific !== undefined) {
      detail = detail && typeof detail === 'object' && !Array.isArray(detail) ? { ...detail, reason: specific } : detail === undefined ? { reason: specific } : { value: detail, reason: specific };
    }
    const e: { code: string; message: string; detail?: unknown } = { code: this.code, message: MESSAGES[this.code] };
    if (detail !== undefined) e.detail = detail;
    return JSON.stringify({ errors: [e] });
  }
}
