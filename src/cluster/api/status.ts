/**
 * Kubernetes `Status` errors, as the API server answers them (and kubectl prints them):
 * `{kind: Status, status: Failure, reason, code, message, details: {name, group, kind, causes}}`.
 * Every refusal of the API server is one of these, with the field named for `Invalid`.
 */
export interface Cause { type: string; message: string; field: string }

export class StatusError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: { name?: string; group?: string; kind?: string; causes?: Cause[] };
  constructor(code: number, reason: string, message: string, details: StatusError['details'] = {}) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toJSON(): Record<string, unknown> {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, details: this.details, code: this.code };
  }
}

/** `configmaps "x" not found` — the Kubernetes wording kubectl users know. */
export const notFound = (resource: string, name: string, group = '') =>
  new StatusError(404, 'NotFound', `${resource}${group ? `.${group}` : ''} "${name}" not found`, { name, ...(group ? { group } : {}), kind: resource });

export const alreadyExists = (resource: string, name: string, group = '') =>
  new StatusError(409, 'AlreadyExists', `${resource}${group ? `.${group}` : ''} "${name}" already exists`, { name, ...(group ? { group } : {}), kind: resource });

export const conflict = (resource: string, name: string, group = '') =>
  new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${resource}${group ? `.${group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, ...(group ? { group } : {}), kind: resource });

export const gone = (message: string) => new StatusError(410, 'Expired', message);

export const badRequest = (message: string) => new StatusError(400, 'BadRequest', message);

/** `Kind "name" is invalid: field: message` with one cause per field, as Kubernetes says it. */
export function invalid(kind: string, name: string, causes: Cause[], group = ''): StatusError {
  const list = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  return new StatusError(422, 'Invalid', `${kind} "${name}" is invalid: ${list}`, { name, ...(group ? { group } : {}), kind, causes });
}
