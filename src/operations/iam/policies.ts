import { IamValidationError, NoSuchEntityException } from '../../errors/index.js';
import type { EntityKind, PolicyHolder } from '../../identity/index.js';
import { MANAGED_POLICIES } from '../../policy/index.js';
import type { AuditDraft, CallContext, Operation, Services } from '../context.js';
import { authorizeIam, checkIdentityPolicy, checkName, groupArn, pageOf, roleArn, userArn } from './common.js';
import { iamOp } from './users.js';
import { assertSodForEntity } from '../sod.js';

const WORD: Record<EntityKind, string> = { user: 'User', group: 'Group', role: 'Role' };
const MAX_NAME: Record<EntityKind, number> = { user: 64, group: 128, role: 64 };

function arnOf(kind: EntityKind, acct: string, name: string): string {
  return kind === 'user' ? userArn(acct, name) : kind === 'group' ? groupArn(acct, name) : roleArn(acct, name);
}

async function holderFor(svc: Services, call: CallContext, kind: EntityKind, rawName: string, action: string, audit: AuditDraft): Promise<PolicyHolder & { arn: string }> {
  const name = checkName(rawName, `${kind}Name`, MAX_NAME[kind]);
  const e = await svc.identity.getEntity<PolicyHolder & { arn: string }>(kind, call.accountId, name);
  await authorizeIam(svc, call, action, e?.arn ?? arnOf(kind, call.accountId, name), audit);
  if (!e) throw new NoSuchEntityException(`The ${kind} with name ${name} cannot be found.`);
  audit.detail(`${kind}Name`, name);
  return e;
}

type NameInput<K extends EntityKind> = K extends 'user' ? { userName: string } : K extends 'group' ? { groupName: string } : { roleName: string };
const nameOf = (kind: EntityKind, input: Record<string, unknown>) => input[`${kind}Name`] as string;

function checkPolicyName(n: string | undefined): string {
  return checkName(n, 'policyName', 128);
}

function putPolicy(kind: EntityKind): Operation<NameInput<EntityKind> & { policyName: string; policyDocument: string }, Record<string, never>> {
  return iamOp(`Put${WORD[kind]}Policy`, false, async (svc, call, input, audit) => {
    const e = await holderFor(svc, call, kind, nameOf(kind, input), `Put${WORD[kind]}Policy`, audit);
    const policyName = checkPolicyName(input.policyName);
    const doc = checkIdentityPolicy(input.policyDocument);
    audit.detail('policyName', policyName);
    const name = nameOf(kind, input);
    await assertSodForEntity(svc, call, audit, kind, name, (h) => ({ ...h, inlinePolicies: { ...h.inlinePolicies, [policyName]: doc } }));
    await svc.identity.updateEntity<PolicyHolder>(kind, call.accountId, name, (h) => {
      h.inlinePolicies[policyName] = doc;
    });
    void e;
    return {};
  });
}

function getPolicy(kind: EntityKind): Operation<NameInput<EntityKind> & { policyName: string }, { name: string; policyName: string; policyDocument: string }> {
  return iamOp(`Get${WORD[kind]}Policy`, true, async (svc, call, input, audit) => {
    const e = await holderFor(svc, call, kind, nameOf(kind, input), `Get${WORD[kind]}Policy`, audit);
    const policyName = checkPolicyName(input.policyName);
    const doc = e.inlinePolicies[policyName];
    if (doc === undefined) throw new NoSuchEntityException(`The ${kind} policy with name ${policyName} cannot be found.`);
    return { name: nameOf(kind, input), policyName, policyDocument: doc };
  });
}

function listPolicies(kind: EntityKind): Operation<NameInput<EntityKind> & { marker?: string; maxItems?: number }, { policyNames: string[]; isTruncated: boolean; marker?: string }> {
  return iamOp(`List${WORD[kind]}Policies`, true, async (svc, call, input, audit) => {
    const e = await holderFor(svc, call, kind, nameOf(kind, input), `List${WORD[kind]}Policies`, audit);
    const p = pageOf(Object.keys(e.inlinePolicies).sort(), input.marker, input.maxItems);
    return { policyNames: p.items, isTruncated: p.isTruncated, marker: p.marker };
  });
}

function deletePolicy(kind: EntityKind): Operation<NameInput<EntityKind> & { policyName: string }, Record<string, never>> {
  return iamOp(`Delete${WORD[kind]}Policy`, false, async (svc, call, input, audit) => {
    await holderFor(svc, call, kind, nameOf(kind, input), `Delete${WORD[kind]}Policy`, audit);
    const policyName = checkPolicyName(input.policyName);
    audit.detail('policyName', policyName);
    await svc.identity.updateEntity<PolicyHolder>(kind, call.accountId, nameOf(kind, input), (h) => {
      if (h.inlinePolicies[policyName] === undefined) throw new NoSuchEntityException(`The ${kind} policy with name ${policyName} cannot be found.`);
      delete h.inlinePolicies[policyName];
    });
    return {};
  });
}

/** An attachable managed policy: one of Keyhold's AWS-managed ones, or a customer-managed one of the caller's account. */
async function checkPolicyArn(svc: Services, acct: string, arn: string | undefined): Promise<string> {
  if (!arn || arn.length < 20 || arn.length > 2048) throw new IamValidationError(`1 validation error detected: Value at 'policyArn' failed to satisfy constraint: Member must have length greater than or equal to 20`);
  if (!MANAGED_POLICIES.has(arn)) {
    if (!arn.startsWith('arn:aws:iam::')) throw new IamValidationError(`ARN ${arn} is not valid.`);
    if (!arn.startsWith(`arn:aws:iam::${acct}:policy/`) || !(await svc.identity.getPolicy(arn))) throw new NoSuchEntityException(`Policy ${arn} does not exist or is not attachable.`);
  }
  return arn;
}

function attachPolicy(kind: EntityKind): Operation<NameInput<EntityKind> & { policyArn: string }, Record<string, never>> {
  return iamOp(`Attach${WORD[kind]}Policy`, false, async (svc, call, input, audit) => {
    await holderFor(svc, call, kind, nameOf(kind, input), `Attach${WORD[kind]}Policy`, audit);
    const arn = await checkPolicyArn(svc, call.accountId, input.policyArn);
    audit.detail('policyArn', arn);
    const name = nameOf(kind, input);
    await assertSodForEntity(svc, call, audit, kind, name, (h) => ({ ...h, attachedPolicies: [...h.attachedPolicies, arn] }));
    await svc.identity.updateEntity<PolicyHolder>(kind, call.accountId, name, (h) => {
      if (!h.attachedPolicies.includes(arn)) h.attachedPolicies.push(arn);
    });
    return {};
  });
}

function detachPolicy(kind: EntityKind): Operation<NameInput<EntityKind> & { policyArn: string }, Record<string, never>> {
  return iamOp(`Detach${WORD[kind]}Policy`, false, async (svc, call, input, audit) => {
    await holderFor(svc, call, kind, nameOf(kind, input), `Detach${WORD[kind]}Policy`, audit);
    const arn = input.policyArn;
    audit.detail('policyArn', arn);
    await svc.identity.updateEntity<PolicyHolder>(kind, call.accountId, nameOf(kind, input), (h) => {
      if (!h.attachedPolicies.includes(arn)) throw new NoSuchEntityException(`Policy ${arn} was not found.`);
      h.attachedPolicies = h.attachedPolicies.filter((a) => a !== arn);
    });
    return {};
  });
}

function listAttached(kind: EntityKind): Operation<NameInput<EntityKind> & { pathPrefix?: string; marker?: string; maxItems?: number }, { attachedPolicies: { policyName: string; policyArn: string }[]; isTruncated: boolean; marker?: string }> {
  return iamOp(`ListAttached${WORD[kind]}Policies`, true, async (svc, call, input, audit) => {
    const e = await holderFor(svc, call, kind, nameOf(kind, input), `ListAttached${WORD[kind]}Policies`, audit);
    const all = e.attachedPolicies.map((arn) => ({ policyArn: arn, policyName: MANAGED_POLICIES.get(arn)?.name ?? arn.split('/').pop()! }));
    const p = pageOf(all, input.marker, input.maxItems);
    return { attachedPolicies: p.items, isTruncated: p.isTruncated, marker: p.marker };
  });
}

export const putUserPolicy = putPolicy('user');
export const getUserPolicy = getPolicy('user');
export const listUserPolicies = listPolicies('user');
export const deleteUserPolicy = deletePolicy('user');
export const putGroupPolicy = putPolicy('group');
export const getGroupPolicy = getPolicy('group');
export const listGroupPolicies = listPolicies('group');
export const deleteGroupPolicy = deletePolicy('group');
export const putRolePolicy = putPolicy('role');
export const getRolePolicy = getPolicy('role');
export const listRolePolicies = listPolicies('role');
export const deleteRolePolicy = deletePolicy('role');
export const attachUserPolicy = attachPolicy('user');
export const attachGroupPolicy = attachPolicy('group');
export const attachRolePolicy = attachPolicy('role');
export const detachUserPolicy = detachPolicy('user');
export const detachGroupPolicy = detachPolicy('group');
export const detachRolePolicy = detachPolicy('role');
export const listAttachedUserPolicies = listAttached('user');
export const listAttachedGroupPolicies = listAttached('group');
export const listAttachedRolePolicies = listAttached('role');
