import { InvalidMarkerException } from '../errors/index.js';
import { assertNotPendingDeletion } from '../keys/index.js';
import { authorizeKey, decodeMarker, page } from './common.js';
import type { Operation } from './context.js';

export interface ListKeyRotationsInput {
  keyId: string;
  limit?: number;
  marker?: string;
}

export interface ListKeyRotationsOutput {
  rotations: { keyId: string; rotationDate: Date; rotationType: 'AUTOMATIC' | 'ON_DEMAND' }[];
  nextMarker?: string;
  truncated: boolean;
}

/** Every version after the first, oldest first; the marker carries the last version number listed. */
export const listKeyRotations: Operation<ListKeyRotationsInput, ListKeyRotationsOutput> = {
  name: 'ListKeyRotations',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const limit = input.limit ?? 100;
    const after = decodeMarker(input.marker);
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'ListKeyRotations', audit);
    assertNotPendingDeletion(key);
    const afterVersion = after === undefined ? 0 : Number(after);
    if (!Number.isSafeInteger(afterVersion) || afterVersion < 0) {
      throw new InvalidMarkerException('The marker that specifies where pagination should next begin is not valid.');
    }
    const rotated = key.versions
      .filter((v) => v.rotationType !== undefined && v.version > afterVersion)
      .sort((a, b) => a.version - b.version)
      .slice(0, limit + 1);
    const p = page(rotated, limit, (v) => String(v.version));
    return {
      rotations: p.items.map((v) => ({ keyId: key.keyId, rotationDate: new Date(v.createdAt), rotationType: v.rotationType! })),
      nextMarker: p.nextMarker,
      truncated: p.truncated,
    };
  },
};
