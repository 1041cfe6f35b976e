import { IamMalformedPolicyDocumentException, IamValidationError, NoSuchEntityException } from '../../errors/index.js';
import { MAX_ROLE_SESSION_SECONDS, type GroupRecord, type RoleRecord, type TagRecord, type UserRecord } from '../../identity/index.js';
import { parsePolicy } from '../../policy/index.js';
import type { AuditDraft, CallContext, Services } from '../context.js';
import { assertSodForMembership } from '../sod.js';
import { authorizeIam, checkName, checkPath, checkTags, groupArn, pageOf, roleArn, userArn } from './common.js';
import { iamOp } from './users.js';

// ---- groups ----

export const createGroup = iamOp<{ groupName: string; path?: string }, { group: GroupRecord }>('CreateGroup', false, async (svc, call, input, audit) => {
  const name = checkName(input.groupName, 'groupName', 128);
  const path = checkPath(input.path);
  await authorizeIam(svc, call, 'CreateGroup', groupArn(call.accountId, name, path), audit);
  audit.detail('groupName', name);
  return { group: await svc.identity.createGroup(call.accountId, name, path, svc.clock.now()) };
});

async function groupAndUser(svc: Services, call: CallContext, input: { groupName: string; userName: string }, action: string, audit: AuditDraft): Promise<{ g: GroupRecord; u: UserRecord }> {
  const gName = checkName(input.groupName, 'groupName', 128);
  const uName = checkName(input.userName, 'userName', 64);
  const g = await svc.identity.getEntity<GroupRecord>('group', call.accountId, gName);
  await authorizeIam(svc, call, action, g?.arn ?? groupArn(call.accountId, gName), audit);
  audit.detail('groupName', gName);
  audit.detail('userName', uName);
  if (!g) throw new NoSuchEntityException(`The group with name ${gName} cannot be found.`);
  const u = await svc.identity.getEntity<UserRecord>('user', call.accountId, uName);
  if (!u) throw new NoSuchEntityException(`The user with name ${uName} cannot be found.`);
  return { g, u };
}

export const addUserToGroup = iamOp<{ groupName: string; userName: string }, Record<string, never>>('AddUserToGroup', false, async (svc, call, input, audit) => {
  const { g, u } = await groupAndUser(svc, call, input, 'AddUserToGroup', audit);
  await assertSodForMembership(svc, call, u.userName, g.groupName);
  await svc.identity.addUserToGroup(call.accountId, g.groupName, u.userName);
  return {};
});

export const removeUserFromGroup = iamOp<{ groupName: string; userName: string }, Record<string, never>>('RemoveUserFromGroup', false, async (svc, call, input, audit) => {
  const { g, u } = await groupAndUser(svc, call, input, 'RemoveUserFromGroup', audit);
  await svc.identity.removeUserFromGroup(call.accountId, g.groupName, u.userName);
  return {};
});

export const listGroupsForUser = iamOp<{ userName: string; marker?: string; maxItems?: number }, { groups: GroupRecord[]; isTruncated: boolean; marker?: string }>('ListGroupsForUser', true, async (svc, call, input, audit) => {
  const name = checkName(input.userName, 'userName', 64);
  const u = await svc.identity.getEntity<UserRecord>('user', call.accountId, name);
  await authorizeIam(svc, call, 'ListGroupsForUser', u?.arn ?? userArn(call.accountId, name), audit);
  if (!u) throw new NoSuchEntityException(`The user with name ${name} cannot be found.`);
  const groups: GroupRecord[] = [];
  for (const gn of u.groups) {
    const g = await svc.identity.getEntity<GroupRecord>('group', call.accountId, gn);
    if (g) groups.push(g);
  }
  const p = pageOf(groups, input.marker, input.maxItems);
  return { groups: p.items, isTruncated: p.isTruncated, marker: p.marker };
});

export const getGroup = iamOp<{ groupName: string; marker?: string; maxItems?: number }, { group: GroupRecord; users: UserRecord[]; isTruncated: boolean; marker?: string }>('GetGroup', true, async (svc, call, input, audit) => {
  const name = checkName(input.groupName, 'groupName', 128);
  const g = await svc.identity.getEntity<GroupRecord>('group', call.accountId, name);
  await authorizeIam(svc, call, 'GetGroup', g?.arn ?? groupArn(call.accountId, name), audit);
  if (!g) throw new NoSuchEntityException(`The group with name ${name} cannot be found.`);
  const users: UserRecord[] = [];
  for (const un of g.members) {
    const u = await svc.identity.getEntity<UserRecord>('user', call.accountId, un);
    if (u) users.push(u);
  }
  const p = pageOf(users, input.marker, input.maxItems);
  return { group: g, users: p.items, isTruncated: p.isTruncated, marker: p.marker };
});

export const deleteGroup = iamOp<{ groupName: string }, Record<string, never>>('DeleteGroup', false, async (svc, call, input, audit) => {
  const name = checkName(input.groupName, 'groupName', 128);
  const g = await svc.identity.getEntity<GroupRecord>('group', call.accountId, name);
  await authorizeIam(svc, call, 'DeleteGroup', g?.arn ?? groupArn(call.accountId, name), audit);
  audit.detail('groupName', name);
  await svc.identity.deleteGroup(call.accountId, name);
  return {};
});

// ---- roles ----

/** A trust policy: the policy language with Principal required, actions from STS. */
export function checkTrustPolicy(doc: string | undefined): string {
  if (!doc) throw new IamValidationError(`1 validation error detected: Value at 'assumeRolePolicyDocument' failed to satisfy constraint: Member must not be null`);
  try {
    parsePolicy(doc, { requirePrincipal: true });
  } catch (e) {
    throw new IamMalformedPolicyDocumentException((e as Error).message);
  }
  return doc;
}

export const createRole = iamOp<{ roleName: string; path?: string; assumeRolePolicyDocument: string; description?: string; maxSessionDuration?: number; tags?: TagRecord[] }, { role: RoleRecord }>('CreateRole', false, async (svc, call, input, audit) => {
  const name = checkName(input.roleName, 'roleName', 64);
  const path = checkPath(input.path);
  const trust = checkTrustPolicy(input.assumeRolePolicyDocument);
  const max = input.maxSessionDuration ?? 3600;
  if (!Number.isInteger(max) || max < 3600 || max > MAX_ROLE_SESSION_SECONDS) {
    throw new IamValidationError(`1 validation error detected: Value '${max}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200`);
  }
  const tags = checkTags(input.tags);
  await authorizeIam(svc, call, 'CreateRole', roleArn(call.accountId, name, path), audit);
  audit.detail('roleName', name);
  const role = await svc.identity.createRole(call.accountId, {
    roleName: name, path, assumeRolePolicyDocument: trust, description: input.description ?? '', maxSessionDuration: max, tags,
  }, svc.clock.now());
  return { role };
});

async function roleFor(svc: Services, call: CallContext, rawName: string, action: string, audit: AuditDraft): Promise<RoleRecord> {
  const name = checkName(rawName, 'roleName', 64);
  const r = await svc.identity.getEntity<RoleRecord>('role', call.accountId, name);
  await authorizeIam(svc, call, action, r?.arn ?? roleArn(call.accountId, name), audit);
  audit.detail('roleName', name);
  if (!r) throw new NoSuchEntityException(`The role with name ${name} cannot be found.`);
  return r;
}

export const getRole = iamOp<{ roleName: string }, { role: RoleRecord }>('GetRole', true, async (svc, call, input, audit) => ({ role: await roleFor(svc, call, input.roleName, 'GetRole', audit) }));

export const listRoles = iamOp<{ pathPrefix?: string; marker?: string; maxItems?: number }, { roles: RoleRecord[]; isTruncated: boolean; marker?: string }>('ListRoles', true, async (svc, call, input, audit) => {
  await authorizeIam(svc, call, 'ListRoles', `arn:aws:iam::${call.accountId}:role/`, audit);
  const all = (await svc.identity.listEntities<RoleRecord>('role', call.accountId)).filter((r) => r.path.startsWith(input.pathPrefix ?? '/'));
  const p = pageOf(all, input.marker, input.maxItems);
  return { roles: p.items, isTruncated: p.isTruncated, marker: p.marker };
});

export const deleteRole = iamOp<{ roleName: string }, Record<string, never>>('DeleteRole', false, async (svc, call, input, audit) => {
  const r = await roleFor(svc, call, input.roleName, 'DeleteRole', audit);
  await svc.identity.deleteRole(call.accountId, r.roleName);
  return {};
});

export const updateAssumeRolePolicy = iamOp<{ roleName: string; policyDocument: string }, Record<string, never>>('UpdateAssumeRolePolicy', false, async (svc, call, input, audit) => {
  const r = await roleFor(svc, call, input.roleName, 'UpdateAssumeRolePolicy', audit);
  const doc = checkTrustPolicy(input.policyDocument);
  await svc.identity.updateEntity<RoleRecord>('role', call.accountId, r.roleName, (rec) => {
    rec.assumeRolePolicyDocument = doc;
  });
  return {};
});
