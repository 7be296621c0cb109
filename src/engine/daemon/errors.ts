/** A PierError with the HTTP status the API answers it with (404 for a missing object, 409 for a conflict). */
import { PierError } from '../../common/errors.ts';

export class ApiError extends PierError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export const notFound = (msg: string) => new ApiError(404, msg);
export const conflict = (msg: string) => new ApiError(409, msg);
