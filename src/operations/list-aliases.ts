import { aliasArn, type AliasRecord } from '../keys/index.js';
import { authorizeAccount, authorizeKey, decodeMarker, page } from './common.js';
import type { Operation } from './context.js';

export interface ListAliasesInput {
  keyId?: string;
  limit?: number;
  marker?: string;
}

export interface AliasListEntry {
  aliasName: string;
  aliasArn: string;
  targetKeyId: string;
  creationDate: Date;
  lastUpdatedDate: Date;
}

export interface ListAliasesOutput {
  aliases: AliasListEntry[];
  nextMarker?: string;
  truncated: boolean;
}

export const listAliases: Operation<ListAliasesInput, ListAliasesOutput> = {
  name: 'ListAliases',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const limit = input.limit ?? 100;
    const after = decodeMarker(input.marker);
    let rows: AliasRecord[];
    if (input.keyId !== undefined) {
      const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
      audit.key(key.arn);
      await authorizeKey(svc, call, key, 'ListAliases', audit);
      const names = (await svc.keys.aliasNamesForKey(key.keyId)).filter((n) => after === undefined || n > after);
      const found = await Promise.all(names.slice(0, limit + 1).map((n) => svc.keys.getAlias(call, n)));
      rows = found.filter((a): a is AliasRecord => a !== undefined);
    } else {
      await authorizeAccount(svc, call, 'ListAliases', audit);
      rows = await svc.keys.listAliases(call, after, limit + 1);
    }
    const p = page(rows, limit, (a) => a.aliasName);
    return {
      aliases: p.items.map((a) => ({
        aliasName: a.aliasName,
        aliasArn: aliasArn(a.region, a.accountId, a.aliasName),
        targetKeyId: a.targetKeyId,
        creationDate: new Date(a.createdAt),
        lastUpdatedDate: new Date(a.updatedAt),
      })),
      nextMarker: p.nextMarker,
      truncated: p.truncated,
    };
  },
};
