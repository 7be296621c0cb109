/**
 * Chunked uploads a `pier push` started and did not finish: `$PIER_ROOT/registry/uploads.json` maps
 * `host/repository@digest` to the session's location, so a later push of the same blob asks the
 * registry where that session stands and sends only the rest. Entries go when the blob is in,
 * when the registry no longer knows the session, or after a week (registries expire sessions).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic.ts';

export interface UploadSession {
  /** the upload URL the registry gave, as it gave it (relative to the host, or absolute) */
  location: string;
  /** the blob's size, so an entry is only ever used for the same blob */
  size: number;
  /** ms since the epoch, when the entry was written */
  saved: number;
}

const MAX_AGE_MS = 7 * 24 * 3600_000;

export class UploadSessions {
  readonly path: string;

  constructor(root: string) {
    this.path = join(root, 'registry', 'uploads.json');
  }

  private static key(host: string, repository: string, digest: string): string {
    return `${host}/${repository}@${digest}`;
  }

  private read(): Record<string, UploadSession> {
    try {
      const v = JSON.parse(readFileSync(this.path, 'utf8')) as unknown;
      return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, UploadSession>) : {};
    } catch {
      return {};
    }
  }

  get(host: string, repository: string, digest: string): UploadSession | undefined {
    const s = this.read()[UploadSessions.key(host, repository, digest)];
    if (!s || typeof s.location !== 'string' || typeof s.size !== 'number' || typeof s.saved !== 'number') return undefined;
    return Date.now() - s.saved < MAX_AGE_MS ? s : undefined;
  }

  /** Record (or with `undefined`, forget) one session; written at once, so a killed push leaves it behind. */
  set(host: string, repository: string, digest: string, session: Omit<UploadSession, 'saved'> | undefined): void {
    const all = this.read();
    const key = UploadSessions.key(host, repository, digest);
    if (session) all[key] = { ...session, saved: Date.now() };
    else if (!(key in all)) return;
    else delete all[key];
    const now = Date.now();
    for (const [k, s] of Object.entries(all)) if (!(now - s?.saved < MAX_AGE_MS)) delete all[k];
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path, JSON.stringify(all) + '\n');
  }
}
