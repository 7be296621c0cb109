/** The registry client: push, pull, login against distribution-API registries. */
export { parseRemoteReference, formatRemoteReference, isLoopbackHost, parseRegistryHost, type RemoteReference } from './reference.ts';
export { AuthStore, type Credentials } from './auth-store.ts';
export { Transport, parseChallenge, type RequestOptions, type Response } from './transport.ts';
export { RegistryClient, registryError, rangeEnd, MANIFEST_ACCEPT, type ClientOptions, type FetchedManifest } from './client.ts';
export { BlobSources } from './blob-sources.ts';
export { Progress, formatBytes, shortDigest } from './progress.ts';
export { Pusher, type PushOptions, type PushResult } from './pusher.ts';
export { Puller, type PullOptions, type PullResult } from './puller.ts';
export { mapLimit } from './limit.ts';
export { login } from './login.ts';
export { clientOptionsFor } from './options.ts';
export { SYSTEM_CERTS_D, certDirsFor, loadTlsMaterial, type TlsMaterial } from './certs.ts';
