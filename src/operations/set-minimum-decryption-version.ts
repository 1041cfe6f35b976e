import { validationError } from '../errors/index.js';
import { assertNotPendingDeletion, minDecryptionVersionOf } from '../keys/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';

export interface SetMinimumDecryptionVersionInput {
  keyId: string;
  minimumDecryptionVersion: number;
}

export interface SetMinimumDecryptionVersionOutput {
  keyId: string;
  minimumDecryptionVersion: number;
  previousMinimumDecryptionVersion: number;
}

/**
 * Keyhold's own (Vault's min_decryption_version): retires every version below the given one, once
 * the data under them has been re-encrypted (ReEncrypt to the newest version). A blob under a
 * retired version then fails to decrypt with KeyVersionRetiredException. The material is kept, so
 * lowering the minimum again restores them. The newest version can never be retired, and the
 * change, old and new minimum, is audited.
 */
export const setMinimumDecryptionVersion: Operation<SetMinimumDecryptionVersionInput, SetMinimumDecryptionVersionOutput> = {
  name: 'SetMinimumDecryptionVersion',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const min = input.minimumDecryptionVersion;
    if (!Number.isSafeInteger(min) || min < 1) {
      throw validationError([`Value '${min}' at 'minimumDecryptionVersion' failed to satisfy constraint: Member must have value greater than or equal to 1`]);
    }
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'SetMinimumDecryptionVersion', audit);
    let previous = 1;
    const updated = await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      // The newest version must stay usable, or the key could encrypt what it cannot decrypt.
      if (min > k.currentVersion) {
        throw validationError([
          `Value '${min}' at 'minimumDecryptionVersion' failed to satisfy constraint: Member must be at most the key's newest version, ${k.currentVersion}`,
        ]);
      }
      previous = minDecryptionVersionOf(k);
      k.minDecryptionVersion = min;
    });
    audit.key(updated.arn, updated.currentVersion);
    audit.detail('minimumDecryptionVersion', min);
    audit.detail('previousMinimumDecryptionVersion', previous);
    audit.detail('retiredVersions', updated.versions.filter((v) => v.version < min).map((v) => v.version));
    return { keyId: updated.arn, minimumDecryptionVersion: min, previousMinimumDecryptionVersion: previous };
  },
};
