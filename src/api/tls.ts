import 'reflect-metadata'; // @peculiar/x509 (through tsyringe) needs the Reflect metadata polyfill
import * as x509 from '@peculiar/x509';
import { webcrypto, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface TlsMaterial {
  readonly key: string;
  readonly cert: string;
  /** The local CA clients should trust (absent when the operator supplied the certificate). */
  readonly caFile?: string;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

async function exists(p: string): Promise<boolean> {
  try {
    await readFile(p);
    return true;
  } catch {
    return false;
  }
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as unknown as webcrypto.CryptoKey));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END PRIVATE KEY-----\n`;
}

/**
 * Without an operator certificate, Keyhold makes its own local CA (10 years) and a server
 * certificate for localhost and 127.0.0.1 (1 year, renewed at start when within 30 days of expiry),
 * kept in DATA_DIR/tls and reused on restart. Clients trust DATA_DIR/tls/ca.pem (AWS_CA_BUNDLE).
 */
export async function ensureLocalTls(dataDir: string, now = new Date()): Promise<TlsMaterial> {
  const dir = join(dataDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, 'ca.pem');
  const caKeyFile = join(dir, 'ca-key.pem');
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server-key.pem');

  let caKeys: CryptoKeyPair;
  let caCert: x509.X509Certificate;
  if ((await exists(caFile)) && (await exists(caKeyFile))) {
    caCert = new x509.X509Certificate(await readFile(caFile, 'utf8'));
    const der = x509.PemConverter.decode(await readFile(caKeyFile, 'utf8'))[0]!;
    const privateKey = (await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign'])) as unknown as CryptoKey;
    caKeys = { privateKey, publicKey: await caCert.publicKey.export(ALG, ['verify']) } as CryptoKeyPair;
  } else {
    caKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
    caCert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=Keyhold local CA',
      notBefore: new Date(now.getTime() - DAY),
      notAfter: new Date(now.getTime() + 3650 * DAY),
      signingAlgorithm: ALG,
      keys: caKeys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
      ],
    });
    await writeFile(caKeyFile, await pkcs8Pem(caKeys.privateKey), { mode: 0o600 });
    await writeFile(caFile, caCert.toString('pem') + '\n', { mode: 0o644 });
  }

  if ((await exists(certFile)) && (await exists(keyFile))) {
    const pem = await readFile(certFile, 'utf8');
    const current = new X509Certificate(pem);
    if (new Date(current.validTo).getTime() - now.getTime() > 30 * DAY && current.checkIssued(new X509Certificate(caCert.toString('pem')))) {
      return { key: await readFile(keyFile, 'utf8'), cert: pem, caFile };
    }
  }
  const serverKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    subject: 'CN=localhost',
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 365 * DAY),
    signingAlgorithm: ALG,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  const key = await pkcs8Pem(serverKeys.privateKey);
  await writeFile(keyFile, key, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  await writeFile(certFile, cert.toString('pem') + '\n', { mode: 0o644 });
  return { key, cert: cert.toString('pem') + '\n', caFile };
}
