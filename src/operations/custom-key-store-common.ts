import { X509Certificate } from 'node:crypto';
import {
  CloudHsmClusterNotFoundException, CustomKeyStoreNotFoundException, IncorrectTrustAnchorException, KMSInvalidStateException,
} from '../errors/index.js';
import type { CustomKeyStoreRecord, KeyRecord } from '../keys/index.js';
import type { MaterialRef } from '../keystore/index.js';
import type { CallContext, Services } from './context.js';

/** A custom key store as DescribeCustomKeyStores lists it. */
export interface CustomKeyStoreEntry {
  customKeyStoreId: string;
  customKeyStoreName: string;
  cloudHsmClusterId: string;
  trustAnchorCertificate: string;
  connectionState: string;
  connectionErrorCode?: string;
  creationDate: Date;
  customKeyStoreType: string;
}

export function customKeyStoreEntry(s: CustomKeyStoreRecord): CustomKeyStoreEntry {
  return {
    customKeyStoreId: s.customKeyStoreId,
    customKeyStoreName: s.name,
    cloudHsmClusterId: s.cloudHsmClusterId,
    trustAnchorCertificate: s.trustAnchorCertificate,
    connectionState: s.connectionState,
    // AWS returns the code only while the state is FAILED.
    connectionErrorCode: s.connectionState === 'FAILED' ? s.connectionErrorCode : undefined,
    creationDate: new Date(s.createdAt),
    customKeyStoreType: s.type,
  };
}

/** The caller's store by id, or CustomKeyStoreNotFoundException (another account's store is not found either). */
export async function storeInScope(svc: Services, call: CallContext, id: string): Promise<CustomKeyStoreRecord> {
  const s = await svc.customKeyStores.getInScope(id, { accountId: call.principal.accountId, region: call.region });
  if (!s) throw new CustomKeyStoreNotFoundException(`Custom key store with ID ${id} was not found.`);
  return s;
}

export function assertDeclaredHsm(svc: Services, cluster: string): void {
  if (!svc.hsms.names().includes(cluster)) {
    throw new CloudHsmClusterNotFoundException(`Cluster ${cluster} was not found: no HSM is declared to this server under that name (--hsm ${cluster}=...).`);
  }
}

/**
 * The trust anchor must be a PEM certificate. AWS also checks it is the cluster's issuing CA; a
 * PKCS#11 token has no such certificate, so Keyhold only stores it.
 */
export function assertTrustAnchor(pem: string): void {
  try {
    new X509Certificate(pem);
  } catch {
    throw new IncorrectTrustAnchorException('The TrustAnchorCertificate is not a valid PEM-encoded X.509 certificate.');
  }
}

/**
 * Where a key's material for `version` lives. A key in a custom key store is usable only while its
 * store is CONNECTED: AWS shows such keys as Unavailable and refuses them with KMSInvalidStateException.
 */
export async function materialRef(svc: Services, key: KeyRecord, version: number): Promise<MaterialRef> {
  if (key.customKeyStoreId === undefined) return { keyId: key.keyId, keyVersion: version };
  const store = await svc.customKeyStores.get(key.customKeyStoreId);
  if (!store || store.connectionState !== 'CONNECTED') {
    throw new KMSInvalidStateException(`${key.arn} is unavailable: its custom key store ${key.customKeyStoreId} is not connected.`);
  }
  return { keyId: key.keyId, keyVersion: version, hsm: store.cloudHsmClusterId };
}

/** KeyState and cluster as DescribeKey shows them: Unavailable while the key's store is not connected. */
export async function keyStoreView(svc: Services, key: KeyRecord): Promise<{ state?: string; cloudHsmClusterId?: string }> {
  if (key.customKeyStoreId === undefined) return {};
  const store = await svc.customKeyStores.get(key.customKeyStoreId);
  const connected = store?.connectionState === 'CONNECTED';
  const unavailable = !connected && (key.state === 'Enabled' || key.state === 'Disabled');
  return { state: unavailable ? 'Unavailable' : undefined, cloudHsmClusterId: store?.cloudHsmClusterId };
}
