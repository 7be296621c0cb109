/**
 * Docker-token-flow JWTs signed with ES256 (P-256, `node:crypto`): the built-in issuer signs
 * `{iss, sub, aud, exp, nbf, iat, jti, access}`; the registry verifies signature, issuer, audience
 * and time before it looks at `access`.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PierError } from '../../common/errors.ts';
import type { Access } from './auth.ts';

export interface Claims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: Access[];
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class TokenKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** RFC 7638 JWK thumbprint of the public key */
  readonly kid: string;

  constructor(privateKey: KeyObject) {
    if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new PierError('registry: the token key must be an EC P-256 private key (ES256)');
    }
    this.privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    const jwk = this.publicKey.export({ format: 'jwk' });
    this.kid = b64url(createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest());
  }

  static generate(): TokenKey {
    return new TokenKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
  }

  /** A PEM private key file (`openssl ecparam -name prime256v1 -genkey -noout`, or PKCS#8). */
  static load(path: string): TokenKey {
    let pem: string;
    try { pem = readFileSync(path, 'utf8'); } catch (err) { throw new PierError(`registry: cannot read token key ${path}: ${(err as Error).message}`); }
    try { return new TokenKey(createPrivateKey(pem)); } catch (err) {
      if (err instanceof PierError) throw err;
      throw new PierError(`registry: token key ${path}: ${(err as Error).message}`);
    }
  }

  sign(claims: Omit<Claims, 'jti' | 'iat' | 'nbf' | 'exp'>, ttlSeconds: number, now = Date.now()): { token: string; claims: Claims } {
    const iat = Math.floor(now / 1000);
    const full: Claims = { ...claims, exp: iat + ttlSeconds, nbf: iat, iat, jti: randomUUID() };
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', kid: this.kid }));
    const body = b64url(JSON.stringify(full));
    const sig = sign('sha256', Buffer.from(`${head}.${body}`), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return { token: `${head}.${body}.${b64url(sig)}`, claims: full };
  }
}

/** Why a token was refused (the text goes into the challenge's `error_description`). */
export class TokenInvalid extends Error {}

/**
 * Verify a compact JWS: ES256 only, signature by `key`, `iss` and `aud` as expected, `nbf`/`exp`
 * around now (`leewaySeconds` each side for clock skew on nbf only: an expired token is expired).
 */
export function verifyToken(token: string, key: KeyObject, expect: { issuer: string; audience: string }, now = Date.now(), leewaySeconds = 5): Claims {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenInvalid('malformed token');
  let head: { alg?: unknown };
  let claims: Partial<Claims>;
  try {
    head = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as typeof head;
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Partial<Claims>;
  } catch { throw new TokenInvalid('malformed token'); }
  if (head.alg !== 'ES256') throw new TokenInvalid(`unsupported token algorithm ${JSON.stringify(head.alg)}`);
  const sig = Buffer.from(parts[2], 'base64url');
  if (sig.length !== 64 || !verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: 'ieee-p1363' }, sig)) {
    throw new TokenInvalid('bad token signature');
  }
  const t = Math.floor(now / 1000);
  if (claims.iss !== expect.issuer) throw new TokenInvalid('token from an unknown issuer');
  const aud = claims.aud as unknown;
  if (!(aud === expect.audience || (Array.isArray(aud) && aud.includes(expect.audience)))) throw new TokenInvalid('token is for another service');
  if (typeof claims.exp !== 'number' || claims.exp <= t) throw new TokenInvalid('token expired');
  if (typeof claims.nbf === 'number' && claims.nbf > t + leewaySeconds) throw new TokenInvalid('token not yet valid');
  if (!Array.isArray(claims.access)) claims.access = [];
  return claims as Claims;
}
