// The server's TLS material: the certificate, its key and intermediate chain named by the
// configuration (PINSTREAM_TLS_CERT, PINSTREAM_TLS_KEY, PINSTREAM_TLS_CA), read and checked as a
// pair before the server listens and again on every reload (SIGHUP). A bad file stops the start
// with a ConfigError naming the setting and the file; it never surfaces later as failed handshakes.
// The listener that uses this material is src/http/server.ts.

import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import tls from 'node:tls';
import { ConfigError, type Config } from '../config/config.js';

/** Older protocol versions are refused in the handshake (issue 14). */
export const TLS_MIN_VERSION = 'TLSv1.2' satisfies tls.SecureVersion;

/** Offered by ALPN in this order of preference: HTTP/2, then HTTP/1.1. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'];

/** Certificate and key files are read whole; anything larger is not a PEM certificate chain. */
export const MAX_TLS_FILE_BYTES = 1024 * 1024;

export type TlsPaths = Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsCa'>;

export interface TlsMaterial {
  /** The certificate followed by the intermediates (PEM), as OpenSSL sends them. */
  cert: string;
  key: string;
  /** The certificate's subjectAltName, as OpenSSL prints it (`DNS:…, IP Address:…`). */
  names: string;
  validTo: Date;
  /** SHA-256 fingerprint of the server certificate. */
  fingerprint256: string;
}

const SETTING = { tlsCert: 'PINSTREAM_TLS_CERT', tlsKey: 'PINSTREAM_TLS_KEY', tlsCa: 'PINSTREAM_TLS_CA' } as const;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads and checks the configured files; undefined when TLS is not configured. */
export function loadTlsMaterial(paths: TlsPaths): TlsMaterial | undefined {
  if (paths.tlsCert === undefined || paths.tlsKey === undefined) return undefined;
  const certPem = readPem('tlsCert', paths.tlsCert);
  const keyPem = readPem('tlsKey', paths.tlsKey);
  const chainPem = paths.tlsCa === undefined ? '' : readPem('tlsCa', paths.tlsCa);

  const certs = certificates('tlsCert', paths.tlsCert, certPem);
  const chain = paths.tlsCa === undefined ? [] : certificates('tlsCa', paths.tlsCa, chainPem);
  const leaf = certs[0];

  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    const encrypted = /passphrase|encrypted/i.test((e as Error).message) || /ENCRYPTED/.test(keyPem);
    throw new ConfigError(
      encrypted
        ? `${SETTING.tlsKey} (${paths.tlsKey}) is an encrypted private key; give the key unencrypted (e.g. openssl pkey -in KEY -out KEY.plain)`
        : `${SETTING.tlsKey} (${paths.tlsKey}) is not a PEM private key: ${firstLine(e)}`,
    );
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new ConfigError(
      `${SETTING.tlsKey} (${paths.tlsKey}) is not the private key of the certificate in ${SETTING.tlsCert} (${paths.tlsCert}, ${leaf.subject.replace(/\n/g, ', ')}); the two files must be a pair`,
    );
  }

  const pem = [...certs, ...chain].map((c) => c.toString()).join('');
  try {
    // What OpenSSL itself refuses (a key too small for its security level, say) fails here too.
    tls.createSecureContext(secureContextOptions({ cert: pem, key: keyPem }));
  } catch (e) {
    throw new ConfigError(`${SETTING.tlsCert} (${paths.tlsCert}) and ${SETTING.tlsKey} (${paths.tlsKey}) are refused by OpenSSL: ${firstLine(e)}`);
  }
  return { cert: pem, key: keyPem, names: leaf.subjectAltName ?? leaf.subject.replace(/\n/g, ', '), validTo: new Date(leaf.validTo), fingerprint256: leaf.fingerprint256 };
}

/** The options every secure context of the server gets (at start and on reload). */
export function secureContextOptions(m: Pick<TlsMaterial, 'cert' | 'key'>): tls.SecureContextOptions {
  return { cert: m.cert, key: m.key, minVersion: TLS_MIN_VERSION };
}

function readPem(setting: keyof typeof SETTING, path: string): string {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'it is a directory' : firstLine(e);
    throw new ConfigError(`${SETTING[setting]}: cannot read ${path}: ${why}`);
  }
  if (buf.length > MAX_TLS_FILE_BYTES) throw new ConfigError(`${SETTING[setting]} (${path}) is larger than ${MAX_TLS_FILE_BYTES} bytes; it is not a PEM file`);
  return buf.toString('latin1');
}

function certificates(setting: keyof typeof SETTING, path: string, pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${SETTING[setting]} (${path}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new ConfigError(`${SETTING[setting]} (${path}): certificate ${i + 1} cannot be parsed: ${firstLine(e)}`);
    }
  });
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}
