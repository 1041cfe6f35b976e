/**
 * Conformance: AWS_CLOUDHSM custom key stores over real SoftHSM2 tokens (temp dir, found by label),
 * driven through the AWS SDK v3 and the AWS CLI. HSM-backed keys encrypt, decrypt and make data keys
 * in the token; their material is nowhere in the data dir; disconnecting makes them Unavailable with
 * AWS's errors; a failing token gives KeyUnavailableException and never a software fallback.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KMS } from '@aws-sdk/client-kms';
import { requireTool, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { rejects } from '../helpers/assert.js';
import { skipWithoutSoftHsm, softHsm, type SoftHsm } from '../helpers/softhsm.js';
import { P } from '../../src/keystore/pkcs11/token.js';

const run = promisify(execFile);
const skip = skipWithoutSoftHsm();
const PRIMARY = 'cluster-softhsmprimary';
const SECOND = 'cluster-softhsmsecondary';
const ABSENT = 'cluster-softhsmabsentxx';
const THIRD = 'cluster-softhsmthirdxxx';

/** Every byte under dir, to look for a string in the database, its WAL, logs and anything else. */
function dataDirContains(dir: string, needle: string): boolean {
  const n = Buffer.from(needle);
  const walk = (d: string): boolean => readdirSync(d).some((name) => {
    const p = join(d, name);
    return statSync(p).isDirectory() ? walk(p) : readFileSync(p).includes(n);
  });
  return walk(dir);
}

describe('custom key stores on SoftHSM2 (AWS_CLOUDHSM)', { skip }, () => {
  let hsm: SoftHsm;
  let base: string;
  let s: TestServer;
  let kms: KMS;
  let trustAnchor: string;
  const pins = { primary: 'primary-pin', second: 'second-pin' };
  let args: string[];

  before(async () => {
    hsm = softHsm();
    const a = hsm.initToken('kh-primary', pins.primary);
    const b = hsm.initToken('kh-second', pins.second);
    const c = hsm.initToken('kh-third', 'third-pin');
    args = [
      '--hsm', `${PRIMARY}=${hsm.module},token-label=kh-primary,pin-file=${a.pinFile}`,
      '--hsm', `${SECOND}=module=${hsm.module},token-label=kh-second,pin-file=${b.pinFile}`,
      '--hsm', `${THIRD}=${hsm.module},token-label=kh-third,pin-file=${c.pinFile}`,
      '--hsm', `${ABSENT}=${hsm.module},token-label=not-initialized,pin-file=${a.pinFile}`,
    ];
    base = tempDir();
    s = await startServer({ dataDir: join(base, 'data'), args, env: hsm.env });
    kms = s.kms();
    trustAnchor = readFileSync(s.caFile!, 'utf8');
  });
  after(async () => {
    await s?.stop();
    const { rmSync } = await import('node:fs');
    if (base) rmSync(base, { recursive: true, force: true });
    hsm?.cleanup();
  });

  let storeId: string;
  let hsmKey: string;
  let softwareKey: string;
  let oldBlob: Uint8Array;

  it('CreateCustomKeyStore checks the HSM name, the trust anchor, the type and uniqueness', async () => {
    const create = (over: Record<string, string>) => kms.createCustomKeyStore({
      CustomKeyStoreName: 'primary', CloudHsmClusterId: PRIMARY, TrustAnchorCertificate: trustAnchor, KeyStorePassword: pins.primary, ...over,
    });
    await rejects(create({ CloudHsmClusterId: 'cluster-notdeclaredxx' }), 'CloudHsmClusterNotFoundException', /cluster-notdeclaredxx/);
    await rejects(create({ TrustAnchorCertificate: 'not a certificate' }), 'IncorrectTrustAnchorException');
    await rejects(create({ CustomKeyStoreType: 'EXTERNAL_KEY_STORE' }), 'UnsupportedOperationException');
    await rejects(create({ CloudHsmClusterId: 'short' }), 'ValidationException', /cloudHsmClusterId/i);
    await rejects(create({ KeyStorePassword: 'short' }), 'ValidationException', /keyStorePassword/i);
    await rejects(create({ CloudHsmClusterId: ABSENT, CustomKeyStoreName: 'absent' }), 'CloudHsmClusterNotActiveException', /not reachable/);
    await rejects(kms.createCustomKeyStore({ CustomKeyStoreName: 'no-cluster' }), 'ValidationException', /CloudHsmClusterId/);

    storeId = (await create({})).CustomKeyStoreId!;
    assert.match(storeId, /^cks-[0-9a-f]{17}$/);
    await rejects(create({ CloudHsmClusterId: SECOND }), 'CustomKeyStoreNameInUseException');
    await rejects(create({ CustomKeyStoreName: 'other' }), 'CloudHsmClusterInUseException');

    const [entry] = (await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores!;
    assert.equal(entry!.CustomKeyStoreName, 'primary');
    assert.equal(entry!.CloudHsmClusterId, PRIMARY);
    assert.equal(entry!.ConnectionState, 'DISCONNECTED');
    assert.equal(entry!.CustomKeyStoreType, 'AWS_CLOUDHSM');
    assert.equal(entry!.TrustAnchorCertificate, trustAnchor);
    assert.ok(entry!.CreationDate instanceof Date);
    assert.equal((entry as Record<string, unknown>).KeyStorePassword, undefined);
    assert.equal((await kms.describeCustomKeyStores({ CustomKeyStoreName: 'primary' })).CustomKeyStores![0]!.CustomKeyStoreId, storeId);
    await rejects(kms.describeCustomKeyStores({ CustomKeyStoreId: 'cks-00000000000000000' }), 'CustomKeyStoreNotFoundException');
    await rejects(kms.describeCustomKeyStores({ CustomKeyStoreName: 'nope' }), 'CustomKeyStoreNotFoundException');
    // Another region is another namespace.
    await rejects(s.kms({ region: 'eu-west-1' }).describeCustomKeyStores({ CustomKeyStoreId: storeId }), 'CustomKeyStoreNotFoundException');
  });

  it('CreateKey in the store needs Origin AWS_CLOUDHSM and a CONNECTED store', async () => {
    await rejects(kms.createKey({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }), 'CustomKeyStoreInvalidStateException', /not connected/);
    await rejects(kms.createKey({ CustomKeyStoreId: storeId }), 'ValidationException', /AWS_CLOUDHSM/);
    await rejects(kms.createKey({ Origin: 'AWS_CLOUDHSM' }), 'ValidationException', /CustomKeyStoreId/);
    await rejects(kms.createKey({ CustomKeyStoreId: 'cks-00000000000000000', Origin: 'AWS_CLOUDHSM' }), 'CustomKeyStoreNotFoundException');
    await kms.connectCustomKeyStore({ CustomKeyStoreId: storeId });
    assert.equal((await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores![0]!.ConnectionState, 'CONNECTED');
    await kms.connectCustomKeyStore({ CustomKeyStoreId: storeId }); // connecting a connected store succeeds
  });

  it('an HSM-backed key encrypts, decrypts, re-encrypts and makes data keys in the token; it does not rotate', async () => {
    const meta = (await kms.createKey({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM', Description: 'in the hsm' })).KeyMetadata!;
    hsmKey = meta.KeyId!;
    assert.equal(meta.Origin, 'AWS_CLOUDHSM');
    assert.equal(meta.CustomKeyStoreId, storeId);
    assert.equal(meta.CloudHsmClusterId, PRIMARY);
    assert.equal(meta.KeyState, 'Enabled');
    softwareKey = (await kms.createKey({ Description: 'software' })).KeyMetadata!.KeyId!;

    const ctx = { tenant: 'acme' };
    const enc = await kms.encrypt({ KeyId: hsmKey, Plaintext: Buffer.from('kept by hardware'), EncryptionContext: ctx });
    oldBlob = enc.CiphertextBlob!;
    assert.equal(enc.KeyId, meta.Arn);
    const dec = await kms.decrypt({ CiphertextBlob: oldBlob, EncryptionContext: ctx });
    assert.equal(Buffer.from(dec.Plaintext!).toString(), 'kept by hardware');
    assert.equal(dec.KeyId, meta.Arn);
    await rejects(kms.decrypt({ CiphertextBlob: oldBlob, EncryptionContext: { tenant: 'other' } }), 'InvalidCiphertextException');
    const tampered = Buffer.from(oldBlob);
    tampered[tampered.length - 1]! ^= 1;
    await rejects(kms.decrypt({ CiphertextBlob: tampered, EncryptionContext: ctx }), 'InvalidCiphertextException');

    const dk = await kms.generateDataKey({ KeyId: hsmKey, KeySpec: 'AES_256', EncryptionContext: ctx });
    assert.equal(dk.Plaintext!.length, 32);
    assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx })).Plaintext!), Buffer.from(dk.Plaintext!));
    const dk2 = await kms.generateDataKeyWithoutPlaintext({ KeyId: hsmKey, NumberOfBytes: 64 });
    assert.equal((await kms.decrypt({ CiphertextBlob: dk2.CiphertextBlob })).Plaintext!.length, 64);

    // Across stores both ways: HSM -> software -> HSM.
    const toSoft = await kms.reEncrypt({ CiphertextBlob: oldBlob, SourceEncryptionContext: ctx, DestinationKeyId: softwareKey });
    const back = await kms.reEncrypt({ CiphertextBlob: toSoft.CiphertextBlob, DestinationKeyId: hsmKey, DestinationEncryptionContext: ctx });
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: back.CiphertextBlob, EncryptionContext: ctx })).Plaintext!).toString(), 'kept by hardware');

    await rejects(kms.enableKeyRotation({ KeyId: hsmKey }), 'UnsupportedOperationException', /custom key store/);
    await rejects(kms.rotateKeyOnDemand({ KeyId: hsmKey }), 'UnsupportedOperationException', /custom key store/);
    assert.equal((await kms.getKeyRotationStatus({ KeyId: hsmKey })).KeyRotationEnabled, false);
  });

  it('the key material is a sensitive, non-extractable object in the token and appears nowhere in the data dir', async () => {
    // Material paths are barrier keys (material/<key id>/<version>): the software key's is there, the HSM key's is not.
    assert.equal(dataDirContains(s.dataDir, `material/${softwareKey}/1`), true, 'the check can see a software key');
    assert.equal(dataDirContains(s.dataDir, `material/${hsmKey}/`), false);
    const attrs = withToken('kh-primary', pins.primary, (lib, session, p) => {
      lib.C_FindObjectsInit(session, [{ type: p.CKA_LABEL, value: `keyhold/${hsmKey}/1` }]);
      const found = lib.C_FindObjects(session, 2);
      lib.C_FindObjectsFinal(session);
      assert.equal(found.length, 1);
      assert.throws(() => lib.C_GetAttributeValue(session, found[0]!, [{ type: p.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
      return lib.C_GetAttributeValue(session, found[0]!, [{ type: p.CKA_SENSITIVE }, { type: p.CKA_EXTRACTABLE }, { type: p.CKA_TOKEN }])
        .map((x) => (x.value as Buffer)[0]);
    });
    assert.deepEqual(attrs, [1, 0, 1]);
  });

  it('disconnected: keys are Unavailable and refused with KMSInvalidStateException; reconnecting brings them back', async () => {
    await rejects(kms.deleteCustomKeyStore({ CustomKeyStoreId: storeId }), 'CustomKeyStoreInvalidStateException', /disconnect/);
    await kms.disconnectCustomKeyStore({ CustomKeyStoreId: storeId });
    const entry = (await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores![0]!;
    assert.equal(entry.ConnectionState, 'DISCONNECTED');
    const meta = (await kms.describeKey({ KeyId: hsmKey })).KeyMetadata!;
    assert.equal(meta.KeyState, 'Unavailable');
    assert.equal(meta.Enabled, false);
    await rejects(kms.encrypt({ KeyId: hsmKey, Plaintext: Buffer.from('x') }), 'KMSInvalidStateException', /unavailable.*not connected/);
    await rejects(kms.decrypt({ CiphertextBlob: oldBlob, EncryptionContext: { tenant: 'acme' } }), 'KMSInvalidStateException', /not connected/);
    await rejects(kms.generateDataKey({ KeyId: hsmKey, KeySpec: 'AES_256' }), 'KMSInvalidStateException');
    await rejects(kms.createKey({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }), 'CustomKeyStoreInvalidStateException');
    await rejects(kms.deleteCustomKeyStore({ CustomKeyStoreId: storeId }), 'CustomKeyStoreHasCMKsException');
    // Software keys are untouched by the store's state.
    await kms.encrypt({ KeyId: softwareKey, Plaintext: Buffer.from('x') });

    await kms.connectCustomKeyStore({ CustomKeyStoreId: storeId });
    assert.equal((await kms.describeKey({ KeyId: hsmKey })).KeyMetadata!.KeyState, 'Enabled');
    const dec = await kms.decrypt({ CiphertextBlob: oldBlob, EncryptionContext: { tenant: 'acme' } });
    assert.equal(Buffer.from(dec.Plaintext!).toString(), 'kept by hardware');
  });

  it('UpdateCustomKeyStore: rename while connected; a wrong password makes Connect FAIL with INVALID_CREDENTIALS until corrected', async () => {
    await rejects(kms.updateCustomKeyStore({ CustomKeyStoreId: storeId, KeyStorePassword: 'whatever1' }), 'CustomKeyStoreInvalidStateException', /DISCONNECTED/);
    await kms.updateCustomKeyStore({ CustomKeyStoreId: storeId, NewCustomKeyStoreName: 'primary-renamed' });
    assert.equal((await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores![0]!.CustomKeyStoreName, 'primary-renamed');

    await kms.disconnectCustomKeyStore({ CustomKeyStoreId: storeId });
    await kms.updateCustomKeyStore({ CustomKeyStoreId: storeId, KeyStorePassword: 'not-the-pin' });
    await kms.connectCustomKeyStore({ CustomKeyStoreId: storeId });
    let entry = (await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores![0]!;
    assert.equal(entry.ConnectionState, 'FAILED');
    assert.equal(entry.ConnectionErrorCode, 'INVALID_CREDENTIALS');
    await rejects(kms.encrypt({ KeyId: hsmKey, Plaintext: Buffer.from('x') }), 'KMSInvalidStateException');
    await rejects(kms.connectCustomKeyStore({ CustomKeyStoreId: storeId }), 'CustomKeyStoreInvalidStateException', /FAILED/);
    await kms.disconnectCustomKeyStore({ CustomKeyStoreId: storeId });
    await kms.updateCustomKeyStore({ CustomKeyStoreId: storeId, KeyStorePassword: pins.primary });
    await kms.connectCustomKeyStore({ CustomKeyStoreId: storeId });
    entry = (await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores![0]!;
    assert.equal(entry.ConnectionState, 'CONNECTED');
    assert.equal(entry.ConnectionErrorCode, undefined);
    await kms.encrypt({ KeyId: hsmKey, Plaintext: Buffer.from('x') });
  });

  it('a restart keeps the store CONNECTED and its keys usable (the new process logs in to the token)', async () => {
    assert.equal(await s.stop(), 0);
    s = await startServer({ dataDir: s.dataDir, args, env: hsm.env, credentials: s.credentials });
    kms = s.kms();
    assert.equal((await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores![0]!.ConnectionState, 'CONNECTED');
    const dec = await kms.decrypt({ CiphertextBlob: oldBlob, EncryptionContext: { tenant: 'acme' } });
    assert.equal(Buffer.from(dec.Plaintext!).toString(), 'kept by hardware');
  });

  it('the AWS CLI creates, describes, connects and deletes a custom key store', async (t) => {
    if (!requireTool('aws (AWS CLI)', await run('aws', ['--version']).then(() => true, () => false))) return t.skip('aws CLI not installed');
    const dir = tempDir();
    writeFileSync(join(dir, 'anchor.pem'), trustAnchor);
    const env = {
      ...process.env,
      AWS_ACCESS_KEY_ID: s.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s.credentials.secretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CA_BUNDLE: s.caFile!,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    };
    const aws = async (a: string[]) => {
      const out = (await run('aws', ['--endpoint-url', s.url, '--output', 'json', 'kms', ...a], { env })).stdout;
      return out.trim() ? JSON.parse(out) : {};
    };
    const created = await aws(['create-custom-key-store', '--custom-key-store-name', 'from-cli', '--cloud-hsm-cluster-id', SECOND,
      '--trust-anchor-certificate', `file://${join(dir, 'anchor.pem')}`, '--key-store-password', pins.second]);
    const id = created.CustomKeyStoreId as string;
    assert.match(id, /^cks-/);
    let described = await aws(['describe-custom-key-stores', '--custom-key-store-name', 'from-cli']);
    assert.equal(described.CustomKeyStores[0].ConnectionState, 'DISCONNECTED');
    assert.equal(described.CustomKeyStores[0].CloudHsmClusterId, SECOND);
    await aws(['connect-custom-key-store', '--custom-key-store-id', id]);
    described = await aws(['describe-custom-key-stores', '--custom-key-store-id', id]);
    assert.equal(described.CustomKeyStores[0].ConnectionState, 'CONNECTED');
    const key = await aws(['create-key', '--custom-key-store-id', id, '--origin', 'AWS_CLOUDHSM']);
    assert.equal(key.KeyMetadata.CloudHsmClusterId, SECOND);
    // botocore checks the cluster id's shape on the client, as for real AWS
    const bad = await run('aws', ['--endpoint-url', s.url, 'kms', 'create-custom-key-store', '--custom-key-store-name', 'x', '--cloud-hsm-cluster-id', 'short'], { env })
      .then(() => undefined, (e: { stderr: string }) => e.stderr);
    assert.match(bad ?? '', /cloud-hsm-cluster-id|CloudHsmClusterId|length/i);
    // An empty store deletes; this one has a key, so it must wait.
    await aws(['disconnect-custom-key-store', '--custom-key-store-id', id]);
    const err = await run('aws', ['--endpoint-url', s.url, 'kms', 'delete-custom-key-store', '--custom-key-store-id', id], { env })
      .then(() => '', (e: { stderr: string }) => e.stderr);
    assert.match(err, /CustomKeyStoreHasCMKsException/);
  });

  it('DeleteCustomKeyStore removes an empty, disconnected store', async () => {
    const id = (await kms.createCustomKeyStore({ CustomKeyStoreName: 'empty', CloudHsmClusterId: THIRD, TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'third-pin' })).CustomKeyStoreId!;
    await kms.connectCustomKeyStore({ CustomKeyStoreId: id });
    await rejects(kms.deleteCustomKeyStore({ CustomKeyStoreId: id }), 'CustomKeyStoreInvalidStateException');
    await kms.disconnectCustomKeyStore({ CustomKeyStoreId: id });
    await kms.deleteCustomKeyStore({ CustomKeyStoreId: id });
    await rejects(kms.describeCustomKeyStores({ CustomKeyStoreId: id }), 'CustomKeyStoreNotFoundException');
    // The HSM is free again for a new store.
    const again = (await kms.createCustomKeyStore({ CustomKeyStoreName: 'empty', CloudHsmClusterId: THIRD, TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'third-pin' })).CustomKeyStoreId!;
    assert.notEqual(again, id);
  });

  it('the token store goes away: KeyUnavailableException, Connect FAILS with NETWORK_ERRORS; when it is back, the server recovers by itself', async () => {
    const away = join(hsm.dir, 'tokens-away');
    renameSync(join(hsm.dir, 'tokens'), away);
    try {
      await rejects(kms.encrypt({ KeyId: hsmKey, Plaintext: Buffer.from('x') }), 'KeyUnavailableException');
      await rejects(kms.decrypt({ CiphertextBlob: oldBlob, EncryptionContext: { tenant: 'acme' } }), 'KeyUnavailableException');
      await rejects(kms.generateDataKey({ KeyId: hsmKey, KeySpec: 'AES_256' }), 'KeyUnavailableException');
      await kms.disconnectCustomKeyStore({ CustomKeyStoreId: storeId });
      await kms.connectCustomKeyStore({ CustomKeyStoreId: storeId });
      const entry = (await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores![0]!;
      assert.equal(entry.ConnectionState, 'FAILED');
      assert.equal(entry.ConnectionErrorCode, 'NETWORK_ERRORS');
      // Software keys keep working.
      await kms.encrypt({ KeyId: softwareKey, Plaintext: Buffer.from('x') });
    } finally {
      renameSync(away, join(hsm.dir, 'tokens'));
    }
    await kms.disconnectCustomKeyStore({ CustomKeyStoreId: storeId });
    // KeyUnavailableException says "retry": the module is initialized again at most every 200 ms.
    let connected = false;
    for (let i = 0; i < 20 && !connected; i++) {
      await kms.connectCustomKeyStore({ CustomKeyStoreId: storeId });
      const e = (await kms.describeCustomKeyStores({ CustomKeyStoreId: storeId })).CustomKeyStores![0]!;
      connected = e.ConnectionState === 'CONNECTED';
      if (!connected) {
        await kms.disconnectCustomKeyStore({ CustomKeyStoreId: storeId });
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    assert.ok(connected, 'reconnected after the token came back');
    const dec = await kms.decrypt({ CiphertextBlob: oldBlob, EncryptionContext: { tenant: 'acme' } });
    assert.equal(Buffer.from(dec.Plaintext!).toString(), 'kept by hardware');
  });

  it('a token failure (the key object destroyed behind Keyhold\'s back) is KeyUnavailableException, never a software fallback', async () => {
    withToken('kh-primary', pins.primary, (lib, session, p) => {
      lib.C_FindObjectsInit(session, [{ type: p.CKA_LABEL, value: `keyhold/${hsmKey}/1` }]);
      const found = lib.C_FindObjects(session, 2);
      lib.C_FindObjectsFinal(session);
      for (const h of found) lib.C_DestroyObject(session, h);
    });
    await rejects(kms.decrypt({ CiphertextBlob: oldBlob, EncryptionContext: { tenant: 'acme' } }), 'KeyUnavailableException');
    await rejects(kms.encrypt({ KeyId: hsmKey, Plaintext: Buffer.from('x') }), 'KeyUnavailableException');
    assert.doesNotMatch(s.stderr, new RegExp(pins.primary), 'the PIN is never logged');
    for (const secret of [pins.primary, pins.second, 'not-the-pin']) {
      assert.equal(dataDirContains(s.dataDir, secret), false, 'no KeyStorePassword is stored or audited');
    }
  });

  /** A session on a token from this (test) process, as an operator's tool would open one. */
  function withToken<T>(label: string, pin: string, fn: (lib: import('pkcs11js').PKCS11, s: Buffer, p: ReturnType<typeof P>) => T): T {
    const p = P();
    process.env.SOFTHSM2_CONF = hsm.conf;
    const lib = new p.PKCS11();
    lib.load(hsm.module);
    lib.C_Initialize({ flags: p.CKF_OS_LOCKING_OK });
    try {
      const slot = lib.C_GetSlotList(true).find((x) => lib.C_GetTokenInfo(x).label.trim() === label)!;
      const session = lib.C_OpenSession(slot, p.CKF_RW_SESSION | p.CKF_SERIAL_SESSION);
      lib.C_Login(session, p.CKU_USER, pin);
      try {
        return fn(lib, session, p);
      } finally {
        lib.C_CloseSession(session);
      }
    } finally {
      lib.C_Finalize();
    }
  }
});
