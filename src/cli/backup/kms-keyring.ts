/**
 * Data keys from Keyhold (or any AWS KMS endpoint) over the AWS SDK, as the ESDK's KMS keyring does:
 * GenerateDataKey under the first key, Encrypt of the same data key under every further key, and
 * Decrypt of one EDK (provider "aws-kms", provider info = key ARN) with the message's context.
 * A key ARN's region picks the client, so one message can carry keys of several regions.
 */
import type { KMS } from '@aws-sdk/client-kms';
import { KMS_PROVIDER_ID, type EncryptedDataKey } from '../../format/backup-message/index.js';
import { kmsClient, type ClientSettings } from '../client.js';
import { DATA_KEY_BYTES, type Keyring } from './message-stream.js';

export function regionOf(keyId: string): string | undefined {
  const m = /^arn:[^:]+:kms:([^:]+):/.exec(keyId);
  return m?.[1];
}

export class NoDecryptableKey extends Error {
  override name = 'NoDecryptableKey';
}

export class KmsKeyring implements Keyring {
  private readonly clients = new Map<string, KMS>();
  /**
   * keyIds: for encryption, the wrapping keys (first = generator). For decryption, if non-empty,
   * only EDKs of these ARNs are tried; if empty, any aws-kms EDK is (discovery).
   */
  constructor(private readonly settings: ClientSettings, readonly keyIds: string[] = [], private readonly regionEndpoints: Record<string, ClientSettings> = {}) {}

  client(keyId: string): KMS {
    const region = regionOf(keyId) ?? this.settings.region;
    let c = this.clients.get(region);
    if (!c) {
      c = kmsClient(this.regionEndpoints[region] ?? { ...this.settings, region });
      this.clients.set(region, c);
    }
    return c;
  }

  async generate(context: Record<string, string>): Promise<{ dataKey: Buffer; encryptedDataKeys: EncryptedDataKey[] }> {
    const [generator, ...others] = this.keyIds;
    if (!generator) throw new Error('no wrapping key given');
    const ec = Object.keys(context).length ? context : undefined;
    const g = await this.client(generator).generateDataKey({ KeyId: generator, NumberOfBytes: DATA_KEY_BYTES, EncryptionContext: ec });
    const dataKey = Buffer.from(g.Plaintext!);
    g.Plaintext!.fill(0);
    if (dataKey.length !== DATA_KEY_BYTES) throw new Error('GenerateDataKey returned a data key of the wrong length');
    const edks: EncryptedDataKey[] = [{ providerId: KMS_PROVIDER_ID, providerInfo: g.KeyId!, ciphertext: Buffer.from(g.CiphertextBlob!) }];
    for (const k of others) edks.push(await this.wrap(k, dataKey, context));
    return { dataKey, encryptedDataKeys: edks };
  }

  /** Wraps an existing data key under one more key (encrypt with several keys; rewrap; copy). */
  async wrap(keyId: string, dataKey: Buffer, context: Record<string, string>): Promise<EncryptedDataKey> {
    const ec = Object.keys(context).length ? context : undefined;
    const e = await this.client(keyId).encrypt({ KeyId: keyId, Plaintext: dataKey, EncryptionContext: ec });
    return { providerId: KMS_PROVIDER_ID, providerInfo: e.KeyId!, ciphertext: Buffer.from(e.CiphertextBlob!) };
  }

  async decrypt(edks: EncryptedDataKey[], context: Record<string, string>): Promise<{ dataKey: Buffer; keyArn: string }> {
    const errors: string[] = [];
    const ec = Object.keys(context).length ? context : undefined;
    for (const edk of edks) {
      if (edk.providerId !== KMS_PROVIDER_ID) continue;
      if (this.keyIds.length && !this.keyIds.includes(edk.providerInfo)) continue;
      try {
        const d = await this.client(edk.providerInfo).decrypt({ CiphertextBlob: edk.ciphertext, EncryptionContext: ec, KeyId: edk.providerInfo });
        const dataKey = Buffer.from(d.Plaintext!);
        d.Plaintext!.fill(0);
        if (d.KeyId !== edk.providerInfo) throw new Error(`Decrypt answered for ${d.KeyId}, not the EDK's key`);
        if (dataKey.length !== DATA_KEY_BYTES) throw new Error('the data key has the wrong length');
        return { dataKey, keyArn: edk.providerInfo };
      } catch (e) {
        const err = e as Error;
        errors.push(`${edk.providerInfo}: ${err.name}: ${err.message}`);
      }
    }
    throw new NoDecryptableKey(errors.length ? `no wrapping key could decrypt the data key:\n  ${errors.join('\n  ')}` : 'the message has no data key wrapped by an aws-kms key this keyring may use');
  }
}
