/**
 * Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant. A grant is kept on
 * its key's record and takes effect at once (no eventual consistency, so GrantTokens need not be
 * presented; each one given is checked for form in invoke.ts). The policy evaluator (policy/authorize.ts) applies grants with their
 * EncryptionContextSubset / EncryptionContextEquals constraints.
 */
import { createHash, randomBytes } from 'node:crypto';
import { InvalidGrantIdException, InvalidGrantTokenException, NotFoundException, ValidationException, AccessDeniedException } from '../errors/index.js';
import { assertNotPendingDeletion, type GrantRecord, type KeyRecord } from '../keys/index.js';
import { authorizeKey, decodeMarker, page, throwIfDryRun, updateKey } from './common.js';
import type { Operation } from './context.js';
import { assertSodForGrant } from './sod.js';
import { GRANT_TOKEN_PATTERN } from './invoke.js';

export const GRANT_OPERATIONS = [
  'Decrypt', 'Encrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'ReEncryptFrom', 'ReEncryptTo', 'Sign', 'Verify',
  'GetPublicKey', 'CreateGrant', 'RetireGrant', 'DescribeKey', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
  'GenerateMac', 'VerifyMac', 'DeriveSharedSecret',
] as const;

/** AWS limit: grants per key. */
export const MAX_GRANTS_PER_KEY = 50_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export interface GrantWire {
  keyId: string;
  grantId: string;
  name?: string;
  creationDate: Date;
  granteePrincipal: string;
  retiringPrincipal?: string;
  issuingAccount: string;
  operations: string[];
  constraints?: { encryptionContextSubset?: Record<string, string>; encryptionContextEquals?: Record<string, string> };
}

function wire(k: KeyRecord, g: GrantRecord): GrantWire {
  return {
    keyId: k.arn, grantId: g.grantId, name: g.name, creationDate: new Date(g.createdAt), granteePrincipal: g.granteePrincipal,
    retiringPrincipal: g.retiringPrincipal, issuingAccount: `arn:aws:iam::${g.issuingAccount}:root`, operations: [...g.operations],
    constraints: g.constraints,
  };
}

function checkPrincipal(p: string, field: string): void {
  if (!/^arn:aws:(iam|sts)::\d{12}:.+$/.test(p) && !/^\d{12}$/.test(p)) throw new ValidationException(`${field} '${p}' is not a valid principal ARN.`);
}

export interface CreateGrantInput {
  keyId: string;
  granteePrincipal: string;
  retiringPrincipal?: string;
  operations: string[];
  constraints?: { encryptionContextSubset?: Record<string, string>; encryptionContextEquals?: Record<string, string> };
  grantTokens?: string[];
  name?: string;
  dryRun?: boolean;
}

export const createGrant: Operation<CreateGrantInput, { grantToken: string; grantId: string }> = {
  name: 'CreateGrant',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    const ops = input.operations ?? [];
    await authorizeKey(svc, call, key, 'CreateGrant', audit, { grantOperations: ops });
    checkPrincipal(input.granteePrincipal, 'GranteePrincipal');
    if (input.retiringPrincipal !== undefined) checkPrincipal(input.retiringPrincipal, 'RetiringPrincipal');
    if (ops.length === 0) throw new ValidationException('1 validation error detected: Value at \'operations\' failed to satisfy constraint: Member must have length greater than or equal to 1');
    for (const o of ops) if (!(GRANT_OPERATIONS as readonly string[]).includes(o)) throw new ValidationException(`1 validation error detected: Value '${o}' at 'operations' failed to satisfy constraint: Member must satisfy enum value set: [${GRANT_OPERATIONS.join(', ')}]`);
    if (input.constraints?.encryptionContextEquals && input.constraints.encryptionContextSubset) {
      throw new ValidationException('A grant constraint can have EncryptionContextEquals or EncryptionContextSubset, not both.');
    }
    // Separation of duties (beyond AWS): a grant may not hand out both managing grants and decrypting.
    const admin = ops.filter((o) => o === 'CreateGrant' || o === 'RetireGrant');
    const use = ops.filter((o) => o === 'Decrypt' || o === 'ReEncryptFrom');
    if (admin.length > 0 && use.length > 0 && (await svc.identity.accountSettings(call.accountId)).separationOfDuties !== false) {
      throw new ValidationException(`Separation of duties: this grant would give ${input.granteePrincipal} both grant management (${admin.join(', ')}) and key use (${use.join(', ')}) on ${key.arn}.`);
    }
    const token = randomBytes(48).toString('base64url');
    const grantId = randomBytes(32).toString('hex');
    const rec: GrantRecord = {
      grantId, tokenSha256: sha256(token), name: input.name, granteePrincipal: input.granteePrincipal, retiringPrincipal: input.retiringPrincipal,
      issuingAccount: call.accountId, operations: [...ops], constraints: input.constraints, createdAt: svc.clock.now(), createdBy: call.principal.arn,
    };
    // Across policy kinds: the grantee's key-policy and identity-policy rights together with this grant.
    await assertSodForGrant(svc, call.accountId, key, rec);
    throwIfDryRun(input.dryRun);
    await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      const grants = k.grants ?? [];
      if (grants.length >= MAX_GRANTS_PER_KEY) throw new ValidationException('The key has reached the limit of grants.');
      k.grants = [...grants, rec];
    });
    audit.detail('grantId', grantId);
    audit.detail('granteePrincipal', input.granteePrincipal);
    audit.detail('operations', ops);
    return { grantToken: token, grantId };
  },
};

export const listGrants: Operation<{ keyId: string; limit?: number; marker?: string; grantId?: string; granteePrincipal?: string }, { grants: GrantWire[]; nextMarker?: string; truncated: boolean }> = {
  name: 'ListGrants',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'ListGrants', audit);
    const after = decodeMarker(input.marker);
    const rows = (key.grants ?? [])
      .filter((g) => (input.grantId === undefined || g.grantId === input.grantId) && (input.granteePrincipal === undefined || g.granteePrincipal === input.granteePrincipal))
      .filter((g) => after === undefined || g.grantId > after)
      .sort((a, b) => (a.grantId < b.grantId ? -1 : 1));
    const p = page(rows, input.limit ?? 50, (g) => g.grantId);
    return { grants: p.items.map((g) => wire(key, g)), nextMarker: p.nextMarker, truncated: p.truncated };
  },
};

export const listRetirableGrants: Operation<{ retiringPrincipal: string; limit?: number; marker?: string }, { grants: GrantWire[]; nextMarker?: string; truncated: boolean }> = {
  name: 'ListRetirableGrants',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const p = call.principal;
    // AWS: kms:ListRetirableGrants is an IAM-policy action; the account's own principals may list their own.
    if (p.type !== 'Root' && p.arn !== input.retiringPrincipal) {
      audit.decision = { effect: 'ImplicitDeny', reason: 'only the account root or the retiring principal itself may list its retirable grants' };
      throw new AccessDeniedException(`User: ${p.arn} is not authorized to perform: kms:ListRetirableGrants`);
    }
    audit.decision = { effect: 'Allow', reason: p.type === 'Root' ? 'account root' : 'the caller is the retiring principal' };
    const after = decodeMarker(input.marker);
    const rows: { k: KeyRecord; g: GrantRecord }[] = [];
    for (const id of await svc.keys.listAccountKeyIds(call.accountId)) {
      const k = await svc.keys.getKey(id);
      if (!k || k.region !== call.region) continue;
      for (const g of k.grants ?? []) if (g.retiringPrincipal === input.retiringPrincipal) rows.push({ k, g });
    }
    rows.sort((a, b) => (a.g.grantId < b.g.grantId ? -1 : 1));
    const p2 = page(rows.filter((r) => after === undefined || r.g.grantId > after), input.limit ?? 50, (r) => r.g.grantId);
    return { grants: p2.items.map((r) => wire(r.k, r.g)), nextMarker: p2.nextMarker, truncated: p2.truncated };
  },
};

async function removeGrant(svc: Parameters<Operation<unknown, unknown>['run']>[0], key: KeyRecord, grantId: string): Promise<GrantRecord> {
  let removed: GrantRecord | undefined;
  await updateKey(svc, key.keyId, (k) => {
    removed = (k.grants ?? []).find((g) => g.grantId === grantId);
    if (!removed) throw new NotFoundException(`Grant ID ${grantId} not found`);
    k.grants = (k.grants ?? []).filter((g) => g.grantId !== grantId);
  });
  return removed!;
}

export const revokeGrant: Operation<{ keyId: string; grantId: string; dryRun?: boolean }, Record<string, never>> = {
  name: 'RevokeGrant',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'RevokeGrant', audit);
    if (!(key.grants ?? []).some((g) => g.grantId === input.grantId)) throw new InvalidGrantIdException(`Grant ID ${input.grantId} not found`);
    throwIfDryRun(input.dryRun);
    await removeGrant(svc, key, input.grantId);
    audit.detail('grantId', input.grantId);
    return {};
  },
};

/**
 * RetireGrant: by token, or by KeyId and GrantId. The retiring principal, the grantee when the
 * grant includes RetireGrant, or the account root may retire it.
 */
export const retireGrant: Operation<{ grantToken?: string; keyId?: string; grantId?: string; dryRun?: boolean }, Record<string, never>> = {
  name: 'RetireGrant',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    let found: { k: KeyRecord; g: GrantRecord } | undefined;
    if (input.grantToken !== undefined) {
      if (!GRANT_TOKEN_PATTERN.test(input.grantToken)) throw new InvalidGrantTokenException('The grant token is not valid.');
      const h = sha256(input.grantToken);
      for (const id of await svc.keys.listAccountKeyIds(call.accountId)) {
        const k = await svc.keys.getKey(id);
        const g = k?.grants?.find((x) => x.tokenSha256 === h);
        if (k && g) found = { k, g };
      }
      if (!found) throw new InvalidGrantTokenException('The grant token is not valid.');
    } else {
      if (input.keyId === undefined || input.grantId === undefined) throw new ValidationException('Specify a GrantToken, or both KeyId and GrantId.');
      const k = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
      const g = k.grants?.find((x) => x.grantId === input.grantId);
      if (!g) throw new InvalidGrantIdException(`Grant ID ${input.grantId} not found`);
      found = { k, g };
    }
    audit.key(found.k.arn);
    const p = call.principal;
    const may = p.type === 'Root' || found.g.retiringPrincipal === p.arn || found.g.retiringPrincipal === p.roleArn ||
      ((found.g.granteePrincipal === p.arn || found.g.granteePrincipal === p.roleArn) && found.g.operations.includes('RetireGrant'));
    audit.decision = may ? { effect: 'Allow', reason: p.type === 'Root' ? 'account root' : `retiring principal of grant ${found.g.grantId}` } : { effect: 'ImplicitDeny', reason: `not the retiring principal of grant ${found.g.grantId}` };
    if (!may) throw new AccessDeniedException(`User: ${p.arn} is not authorized to perform: kms:RetireGrant on resource: ${found.k.arn}`);
    throwIfDryRun(input.dryRun);
    await removeGrant(svc, found.k, found.g.grantId);
    audit.detail('grantId', found.g.grantId);
    return {};
  },
};
