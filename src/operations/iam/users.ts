import { NoSuchEntityException } from '../../errors/index.js';
import type { AccessKeyRecord, AccessKeyStatus, LastUsed, TagRecord, UserRecord } from '../../identity/index.js';
import type { AuditDraft, CallContext, Operation, Services } from '../context.js';
import { IamValidationError } from '../../errors/index.js';
import { authorizeIam, checkName, checkPath, checkTags, IAM_SOURCE, pageOf, userArn } from './common.js';

export function iamOp<I, O>(name: string, readOnly: boolean, run: (svc: Services, call: CallContext, input: I, audit: AuditDraft) => Promise<O>): Operation<I, O> {
  return { name, eventSource: IAM_SOURCE, readOnly, run };
}

/** The user a call is about: the named one, or (IAM's rule for the user-scoped calls) the caller itself. */
export function targetUser(call: CallContext, userName: string | undefined): string {
  if (userName !== undefined) return checkName(userName, 'userName', 64);
  if (call.principal.type === 'IAMUser' && call.principal.userName) return call.principal.userName;
  throw new IamValidationError(`1 validation error detected: Value at 'userName' failed to satisfy constraint: Member must not be null`);
}

async function userFor(svc: Services, call: CallContext, name: string, action: string, audit: AuditDraft): Promise<UserRecord> {
  const acct = call.accountId;
  const existing = await svc.identity.getEntity<UserRecord>('user', acct, name);
  await authorizeIam(svc, call, action, existing?.arn ?? userArn(acct, name), audit);
  if (!existing) throw new NoSuchEntityException(`The user with name ${name} cannot be found.`);
  audit.detail('userName', existing.userName);
  return existing;
}

export const createUser = iamOp<{ userName: string; path?: string; tags?: TagRecord[] }, { user: UserRecord }>('CreateUser', false, async (svc, call, input, audit) => {
  const name = checkName(input.userName, 'userName', 64);
  const path = checkPath(input.path);
  const tags = checkTags(input.tags);
  await authorizeIam(svc, call, 'CreateUser', userArn(call.accountId, name, path), audit);
  audit.detail('userName', name);
  return { user: await svc.identity.createUser(call.accountId, name, path, tags, svc.clock.now()) };
});

export const getUser = iamOp<{ userName?: string }, { user: UserRecord }>('GetUser', true, async (svc, call, input, audit) => {
  if (input.userName === undefined && call.principal.type === 'Root') {
    audit.decision = { effect: 'Allow', reason: 'account root may perform iam:GetUser' };
    // AWS answers the root with the account's own identity.
    return { user: { userName: '', userId: call.accountId, arn: call.principal.arn, path: '/', accountId: call.accountId, createdAt: 0, tags: [], groups: [], inlinePolicies: {}, attachedPolicies: [] } };
  }
  return { user: await userFor(svc, call, targetUser(call, input.userName), 'GetUser', audit) };
});

export const listUsers = iamOp<{ pathPrefix?: string; marker?: string; maxItems?: number }, { users: UserRecord[]; isTruncated: boolean; marker?: string }>('ListUsers', true, async (svc, call, input, audit) => {
  await authorizeIam(svc, call, 'ListUsers', `arn:aws:iam::${call.accountId}:user/`, audit);
  const all = (await svc.identity.listEntities<UserRecord>('user', call.accountId)).filter((u) => u.path.startsWith(input.pathPrefix ?? '/'));
  const p = pageOf(all, input.marker, input.maxItems);
  return { users: p.items, isTruncated: p.isTruncated, marker: p.marker };
});

export const deleteUser = iamOp<{ userName: string }, Record<string, never>>('DeleteUser', false, async (svc, call, input, audit) => {
  const u = await userFor(svc, call, checkName(input.userName, 'userName', 64), 'DeleteUser', audit);
  await svc.identity.deleteUser(call.accountId, u.userName);
  return {};
});

export const tagUser = iamOp<{ userName: string; tags: TagRecord[] }, Record<string, never>>('TagUser', false, async (svc, call, input, audit) => {
  const u = await userFor(svc, call, checkName(input.userName, 'userName', 64), 'TagUser', audit);
  const tags = checkTags(input.tags);
  await svc.identity.updateEntity<UserRecord>('user', call.accountId, u.userName, (rec) => {
    const map = new Map(rec.tags.map((t) => [t.key.toLowerCase(), t]));
    for (const t of tags) map.set(t.key.toLowerCase(), t);
    rec.tags = checkTags([...map.values()]);
  });
  return {};
});

export const untagUser = iamOp<{ userName: string; tagKeys: string[] }, Record<string, never>>('UntagUser', false, async (svc, call, input, audit) => {
  const u = await userFor(svc, call, checkName(input.userName, 'userName', 64), 'UntagUser', audit);
  const drop = new Set((input.tagKeys ?? []).map((k) => k.toLowerCase()));
  await svc.identity.updateEntity<UserRecord>('user', call.accountId, u.userName, (rec) => {
    rec.tags = rec.tags.filter((t) => !drop.has(t.key.toLowerCase()));
  });
  return {};
});

export const listUserTags = iamOp<{ userName: string; marker?: string; maxItems?: number }, { tags: TagRecord[]; isTruncated: boolean; marker?: string }>('ListUserTags', true, async (svc, call, input, audit) => {
  const u = await userFor(svc, call, checkName(input.userName, 'userName', 64), 'ListUserTags', audit);
  const p = pageOf([...u.tags], input.marker, input.maxItems);
  return { tags: p.items, isTruncated: p.isTruncated, marker: p.marker };
});

// ---- access keys ----

export const createAccessKey = iamOp<{ userName?: string }, { accessKey: AccessKeyRecord; secretAccessKey: string }>('CreateAccessKey', false, async (svc, call, input, audit) => {
  const u = await userFor(svc, call, targetUser(call, input.userName), 'CreateAccessKey', audit);
  const { record, secretAccessKey } = await svc.identity.createAccessKey(call.accountId, u.userName, svc.clock.now());
  audit.detail('accessKeyId', record.accessKeyId);
  // The secret goes to the caller once; the audit event never carries it.
  return { accessKey: record, secretAccessKey };
});

export const listAccessKeys = iamOp<{ userName?: string; marker?: string; maxItems?: number }, { accessKeys: AccessKeyRecord[]; isTruncated: boolean; marker?: string }>('ListAccessKeys', true, async (svc, call, input, audit) => {
  const u = await userFor(svc, call, targetUser(call, input.userName), 'ListAccessKeys', audit);
  const p = pageOf(await svc.identity.listAccessKeys(call.accountId, u.userName), input.marker, input.maxItems);
  return { accessKeys: p.items, isTruncated: p.isTruncated, marker: p.marker };
});

function checkStatus(s: string | undefined): AccessKeyStatus {
  if (s !== 'Active' && s !== 'Inactive') throw new IamValidationError(`1 validation error detected: Value '${s ?? ''}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]`);
  return s;
}

function checkAccessKeyId(s: string | undefined): string {
  if (!s || s.length < 16 || s.length > 128 || !/^[\w]+$/.test(s)) throw new IamValidationError(`1 validation error detected: Value at 'accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+`);
  return s;
}

export const updateAccessKey = iamOp<{ userName?: string; accessKeyId: string; status: string }, Record<string, never>>('UpdateAccessKey', false, async (svc, call, input, audit) => {
  const status = checkStatus(input.status);
  const akid = checkAccessKeyId(input.accessKeyId);
  const u = await userFor(svc, call, targetUser(call, input.userName), 'UpdateAccessKey', audit);
  audit.detail('accessKeyId', akid);
  audit.detail('status', status);
  if (status === 'Active' && u.offboardedAt !== undefined) throw new NoSuchEntityException(`User ${u.userName} has been offboarded; its access keys cannot be activated.`);
  await svc.identity.updateAccessKey(call.accountId, u.userName, akid, status);
  return {};
});

export const deleteAccessKey = iamOp<{ userName?: string; accessKeyId: string }, Record<string, never>>('DeleteAccessKey', false, async (svc, call, input, audit) => {
  const akid = checkAccessKeyId(input.accessKeyId);
  const u = await userFor(svc, call, targetUser(call, input.userName), 'DeleteAccessKey', audit);
  audit.detail('accessKeyId', akid);
  await svc.identity.deleteAccessKey(call.accountId, u.userName, akid);
  return {};
});

export const getAccessKeyLastUsed = iamOp<{ accessKeyId: string }, { userName: string; lastUsed?: LastUsed }>('GetAccessKeyLastUsed', true, async (svc, call, input, audit) => {
  const akid = checkAccessKeyId(input.accessKeyId);
  const rec = await svc.identity.getAccessKey(akid);
  const arn = rec?.userArn ?? userArn(call.accountId, rec?.userName ?? '*');
  await authorizeIam(svc, call, 'GetAccessKeyLastUsed', arn, audit);
  if (!rec || rec.kind !== 'user' || rec.accountId !== call.accountId) throw new NoSuchEntityException(`The Access Key with id ${akid} cannot be found.`);
  return { userName: rec.userName!, lastUsed: await svc.identity.lastUsed(akid) };
});
