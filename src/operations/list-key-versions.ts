import { InvalidMarkerException } from '../errors/index.js';
import { minDecryptionVersionOf, ownerOf, rotationOf } from '../keys/index.js';
import { authorizeKey, decodeMarker, page } from './common.js';
import type { Operation } from './context.js';
import { ROTATION_OPT_OUT_TAG } from './create-key.js';

export interface ListKeyVersionsInput {
  keyId: string;
  limit?: number;
  marker?: string;
}

export interface KeyVersionEntry {
  version: number;
  creationDate: Date;
  rotationType?: string;
  current: boolean;
  retired: boolean;
  encryptCount: number;
  decryptCount: number;
  lastUsedDate?: Date;
}

export interface ListKeyVersionsOutput {
  keyId: string;
  currentVersion: number;
  minimumDecryptionVersion: number;
  /** The Owner tag, or else the creator. */
  owner: string;
  creator: string;
  ownerActive: boolean;
  /** True when the creator turned automatic rotation off at CreateKey (tag KeyholdRotation=disabled). */
  rotationOptOut: boolean;
  keyRotationEnabled: boolean;
  versions: KeyVersionEntry[];
  nextMarker?: string;
  truncated: boolean;
}

/**
 * Keyhold's own: every version of a key, oldest first, with its creation time, how often it
 * encrypted and decrypted and when it was last used (counts from this process at once, from other
 * processes after their next usage flush), whether it is retired; plus the key's owner and whether
 * that principal is still active, for `keyhold keys report`.
 */
export const listKeyVersions: Operation<ListKeyVersionsInput, ListKeyVersionsOutput> = {
  name: 'ListKeyVersions',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const limit = input.limit ?? 100;
    const after = decodeMarker(input.marker);
    const afterVersion = after === undefined ? 0 : Number(after);
    if (!Number.isSafeInteger(afterVersion) || afterVersion < 0) {
      throw new InvalidMarkerException('The marker that specifies where pagination should next begin is not valid.');
    }
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: true });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'ListKeyVersions', audit);
    // Unlike ListKeyRotations this answers for keys pending deletion too: reports need their owner.
    const usage = await svc.usage.read(key.keyId);
    const min = minDecryptionVersionOf(key);
    const versions = [...key.versions].sort((a, b) => a.version - b.version).filter((v) => v.version > afterVersion).slice(0, limit + 1);
    const p = page(versions, limit, (v) => String(v.version));
    const owner = ownerOf(key);
    return {
      keyId: key.arn,
      currentVersion: key.currentVersion,
      minimumDecryptionVersion: min,
      owner,
      creator: key.createdBy,
      ownerActive: await svc.identity.isActivePrincipal(owner),
      rotationOptOut: key.tags.some((t) => t.tagKey === ROTATION_OPT_OUT_TAG.tagKey && t.tagValue === ROTATION_OPT_OUT_TAG.tagValue),
      keyRotationEnabled: rotationOf(key).enabled,
      versions: p.items.map((v) => {
        const u = usage.get(v.version);
        return {
          version: v.version,
          creationDate: new Date(v.createdAt),
          ...(v.rotationType ? { rotationType: v.rotationType } : {}),
          current: v.version === key.currentVersion,
          retired: v.version < min,
          encryptCount: u?.encryptCount ?? 0,
          decryptCount: u?.decryptCount ?? 0,
          ...(u?.lastUsedAt !== undefined ? { lastUsedDate: new Date(u.lastUsedAt) } : {}),
        };
      }),
      nextMarker: p.nextMarker,
      truncated: p.truncated,
    };
  },
};
