// A throwaway PKI made with the openssl CLI for TLS tests: a root CA, an intermediate CA it signs,
// and server certificates the intermediate signs for chosen names (DNS names and IP addresses), as
// a deployment's own CA would issue them. EC P-256 keys: quick to make.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const OPENSSL = '/usr/bin/openssl';

/** Why TLS tests cannot run here, or undefined when they can. */
export function opensslMissing(): string | undefined {
  try {
    execFileSync(OPENSSL, ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `the openssl CLI (${OPENSSL}) is not available to make test certificates`;
  }
}

export interface ServerCert {
  certPath: string;
  keyPath: string;
}

export interface TestPki {
  dir: string;
  /** The root CA certificate (PEM): what clients trust. */
  rootPem: string;
  /** The intermediate CA certificate's file: what the server sends after its own (PINSTREAM_TLS_CA). */
  intermediatePath: string;
  /** A new server certificate and key for these names (`127.0.0.1` becomes an IP SAN). */
  issue(name: string, names: string[]): ServerCert;
  /** A key that belongs to no certificate. */
  strayKeyPath: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-pki-'));
  openssl(['req', '-x509', ...EC, '-keyout', 'root.key', '-out', 'root.pem', '-days', '2', '-subj', '/CN=Pinstream Test Root CA'], dir);
  writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
  openssl(['req', '-new', ...EC, '-keyout', 'intermediate.key', '-out', 'intermediate.csr', '-subj', '/CN=Pinstream Test Intermediate CA'], dir);
  openssl(['x509', '-req', '-in', 'intermediate.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'intermediate.pem', '-days', '2', '-extfile', 'ca.ext'], dir);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'stray.key'], dir);
  return {
    dir,
    rootPem: readFileSync(join(dir, 'root.pem'), 'utf8'),
    intermediatePath: join(dir, 'intermediate.pem'),
    strayKeyPath: join(dir, 'stray.key'),
    issue(name, names) {
      const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
      openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${names[0]}`], dir);
      openssl(
        ['x509', '-req', '-in', `${name}.csr`, '-CA', 'intermediate.pem', '-CAkey', 'intermediate.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`],
        dir,
      );
      return { certPath: join(dir, `${name}.pem`), keyPath: join(dir, `${name}.key`) };
    },
  };
}
