/**
 * Managed policies: customer-managed ones (CreatePolicy, GetPolicy, GetPolicyVersion, ListPolicies,
 * ListPolicyVersions, CreatePolicyVersion, DeletePolicyVersion, DeletePolicy) and the AWS-managed
 * Keyhold policies, which read like AWS's (scope AWS, one version v1, not deletable). A customer
 * policy is attached by ARN with Attach{User,Group,Role}Policy and evaluated in its default version.
 * Making a new version the default is checked by the separation-of-duties guard for every entity
 * the policy is attached to.
 */
import { DeleteConflictException, IamLimitExceededException, IamValidationError, InvalidInputException, NoSuchEntityException } from '../../errors/index.js';
import { MAX_POLICY_VERSIONS, type ManagedPolicyRecord, type PolicyVersionRecord, type TagRecord } from '../../identity/index.js';
import { MANAGED_POLICIES } from '../../policy/index.js';
import type { AuditDraft, CallContext, Services } from '../context.js';
import { assertSodForPolicyVersion } from '../sod.js';
import { authorizeIam, checkIdentityPolicy, checkName, checkPath, checkTags, pageOf } from './common.js';
import { iamOp } from './users.js';

/** A managed policy as IAM answers it (GetPolicy, ListPolicies, CreatePolicy). */
export interface PolicyView {
  policyName: string;
  policyId: string;
  arn: string;
  path: string;
  defaultVersionId: string;
  attachmentCount: number;
  isAttachable: boolean;
  description?: string;
  createDate: Date;
  updateDate: Date;
  tags: TagRecord[];
}

export interface PolicyVersionView {
  document?: string;
  versionId: string;
  isDefaultVersion: boolean;
  createDate: Date;
}

/** AWS-managed policies have fixed ids and dates: these are Keyhold's, shipped with the code. */
const AWS_POLICY_DATE = new Date('2026-01-01T00:00:00Z');
const AWS_POLICY_IDS: Record<string, string> = {
  KeyholdKeyAdministrator: 'ANPAKEYHOLDKEYADMIN01',
  KeyholdKeyUser: 'ANPAKEYHOLDKEYUSER001',
  KeyholdBackupWriter: 'ANPAKEYHOLDBACKUPWRT1',
  KeyholdBackupRestoreDrill: 'ANPAKEYHOLDRESTDRILL1',
};

async function view(svc: Services, acct: string, p: ManagedPolicyRecord): Promise<PolicyView> {
  return {
    policyName: p.policyName, policyId: p.policyId, arn: p.arn, path: p.path, defaultVersionId: p.defaultVersionId,
    attachmentCount: (await svc.identity.policyAttachments(acct, p.arn)).length, isAttachable: true,
    description: p.description || undefined, createDate: new Date(p.createdAt), updateDate: new Date(p.updatedAt), tags: p.tags,
  };
}

async function awsView(svc: Services, acct: string, arn: string): Promise<PolicyView> {
  const m = MANAGED_POLICIES.get(arn)!;
  return {
    policyName: m.name, policyId: AWS_POLICY_IDS[m.name] ?? 'ANPAKEYHOLDMANAGED001', arn, path: '/', defaultVersionId: 'v1',
    attachmentCount: (await svc.identity.policyAttachments(acct, arn)).length, isAttachable: true, description: m.description,
    createDate: AWS_POLICY_DATE, updateDate: AWS_POLICY_DATE, tags: [],
  };
}

function checkPolicyArnInput(arn: string | undefined): string {
  if (!arn || arn.length < 20 || arn.length > 2048) {
    throw new IamValidationError(`1 validation error detected: Value at 'policyArn' failed to satisfy constraint: Member must have length greater than or equal to 20`);
  }
  if (!/^arn:aws:iam::(\d{12}|aws):policy\/.+$/.test(arn)) throw new IamValidationError(`ARN ${arn} is not valid.`);
  return arn;
}

/** The customer-managed policy the caller names, in the caller's account; authorized as iam:<action> on its ARN. */
async function customerPolicy(svc: Services, call: CallContext, rawArn: string | undefined, action: string, audit: AuditDraft): Promise<ManagedPolicyRecord> {
  const arn = checkPolicyArnInput(rawArn);
  await authorizeIam(svc, call, action, arn, audit);
  audit.detail('policyArn', arn);
  const p = arn.startsWith(`arn:aws:iam::${call.accountId}:`) ? await svc.identity.getPolicy(arn) : undefined;
  if (!p) throw new NoSuchEntityException(`Policy ${arn} does not exist or is not attachable.`);
  return p;
}

function checkVersionId(v: string | undefined): string {
  if (!v || !/^v[1-9][0-9]*(\.[A-Za-z0-9-]*)?$/.test(v)) {
    throw new IamValidationError(`1 validation error detected: Value '${v ?? ''}' at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?`);
  }
  return v;
}

export const createPolicy = iamOp<
  { policyName: string; path?: string; policyDocument: string; description?: string; tags?: TagRecord[] },
  { policy: PolicyView }
>('CreatePolicy', false, async (svc, call, input, audit) => {
  const name = checkName(input.policyName, 'policyName', 128);
  const path = checkPath(input.path);
  const description = input.description ?? '';
  if (description.length > 1000) throw new IamValidationError(`1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000`);
  const tags = checkTags(input.tags);
  await authorizeIam(svc, call, 'CreatePolicy', `arn:aws:iam::${call.accountId}:policy${path}${name}`, audit);
  const document = checkIdentityPolicy(input.policyDocument);
  audit.detail('policyName', name);
  const p = await svc.identity.createPolicy(call.accountId, { policyName: name, path, description, document, tags }, svc.clock.now());
  audit.detail('policyArn', p.arn);
  return { policy: await view(svc, call.accountId, p) };
});

export const getPolicy = iamOp<{ policyArn: string }, { policy: PolicyView }>('GetPolicy', true, async (svc, call, input, audit) => {
  if (input.policyArn && MANAGED_POLICIES.has(input.policyArn)) {
    await authorizeIam(svc, call, 'GetPolicy', input.policyArn, audit);
    return { policy: await awsView(svc, call.accountId, input.policyArn) };
  }
  const p = await customerPolicy(svc, call, input.policyArn, 'GetPolicy', audit);
  return { policy: await view(svc, call.accountId, p) };
});

export const getPolicyVersion = iamOp<{ policyArn: string; versionId: string }, { policyVersion: PolicyVersionView }>('GetPolicyVersion', true, async (svc, call, input, audit) => {
  const versionId = checkVersionId(input.versionId);
  if (input.policyArn && MANAGED_POLICIES.has(input.policyArn)) {
    await authorizeIam(svc, call, 'GetPolicyVersion', input.policyArn, audit);
    if (versionId !== 'v1') throw new NoSuchEntityException(`Policy ${input.policyArn} version ${versionId} does not exist or is not attachable.`);
    return { policyVersion: { document: MANAGED_POLICIES.get(input.policyArn)!.document, versionId, isDefaultVersion: true, createDate: AWS_POLICY_DATE } };
  }
  const p = await customerPolicy(svc, call, input.policyArn, 'GetPolicyVersion', audit);
  const v = p.versions.find((x) => x.versionId === versionId);
  if (!v) throw new NoSuchEntityException(`Policy ${p.arn} version ${versionId} does not exist or is not attachable.`);
  return { policyVersion: { document: v.document, versionId: v.versionId, isDefaultVersion: v.versionId === p.defaultVersionId, createDate: new Date(v.createdAt) } };
});

export const listPolicies = iamOp<
  { scope?: string; onlyAttached?: boolean; pathPrefix?: string; marker?: string; maxItems?: number },
  { policies: PolicyView[]; isTruncated: boolean; marker?: string }
>('ListPolicies', true, async (svc, call, input, audit) => {
  const scope = input.scope ?? 'All';
  if (!['All', 'AWS', 'Local'].includes(scope)) {
    throw new IamValidationError(`1 validation error detected: Value '${scope}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]`);
  }
  await authorizeIam(svc, call, 'ListPolicies', `arn:aws:iam::${call.accountId}:policy/`, audit);
  const all: PolicyView[] = [];
  if (scope !== 'Local') for (const arn of MANAGED_POLICIES.keys()) all.push(await awsView(svc, call.accountId, arn));
  if (scope !== 'AWS') for (const p of await svc.identity.listPolicies(call.accountId)) all.push(await view(svc, call.accountId, p));
  const prefix = input.pathPrefix ?? '/';
  const rows = all.filter((p) => p.path.startsWith(prefix) && (!input.onlyAttached || p.attachmentCount > 0));
  const page = pageOf(rows, input.marker, input.maxItems);
  return { policies: page.items, isTruncated: page.isTruncated, marker: page.marker };
});

export const listPolicyVersions = iamOp<{ policyArn: string; marker?: string; maxItems?: number }, { versions: PolicyVersionView[]; isTruncated: boolean; marker?: string }>(
  'ListPolicyVersions', true, async (svc, call, input, audit) => {
    if (input.policyArn && MANAGED_POLICIES.has(input.policyArn)) {
      await authorizeIam(svc, call, 'ListPolicyVersions', input.policyArn, audit);
      return { versions: [{ versionId: 'v1', isDefaultVersion: true, createDate: AWS_POLICY_DATE }], isTruncated: false };
    }
    const p = await customerPolicy(svc, call, input.policyArn, 'ListPolicyVersions', audit);
    const newestFirst = [...p.versions].reverse().map((v: PolicyVersionRecord) => ({ versionId: v.versionId, isDefaultVersion: v.versionId === p.defaultVersionId, createDate: new Date(v.createdAt) }));
    const page = pageOf(newestFirst, input.marker, input.maxItems);
    return { versions: page.items, isTruncated: page.isTruncated, marker: page.marker };
  },
);

export const createPolicyVersion = iamOp<{ policyArn: string; policyDocument: string; setAsDefault?: boolean }, { policyVersion: PolicyVersionView }>(
  'CreatePolicyVersion', false, async (svc, call, input, audit) => {
    const p = await customerPolicy(svc, call, input.policyArn, 'CreatePolicyVersion', audit);
    const document = checkIdentityPolicy(input.policyDocument);
    if (p.versions.length >= MAX_POLICY_VERSIONS) {
      throw new IamLimitExceededException(`A managed policy can have up to ${MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version.`);
    }
    // The new default is in force at once for every entity it is attached to: the SoD guard checks them.
    if (input.setAsDefault) await assertSodForPolicyVersion(svc, call, audit, p.arn, document);
    const now = svc.clock.now();
    let created: PolicyVersionRecord | undefined;
    const after = await svc.identity.updatePolicy(p.arn, (rec) => {
      if (rec.versions.length >= MAX_POLICY_VERSIONS) throw new IamLimitExceededException(`A managed policy can have up to ${MAX_POLICY_VERSIONS} versions.`);
      created = { versionId: `v${rec.nextVersion}`, document, createdAt: now };
      rec.nextVersion += 1;
      rec.versions.push(created);
      if (input.setAsDefault) rec.defaultVersionId = created.versionId;
      rec.updatedAt = now;
    });
    audit.detail('versionId', created!.versionId);
    audit.detail('setAsDefault', input.setAsDefault === true);
    return { policyVersion: { versionId: created!.versionId, isDefaultVersion: after.defaultVersionId === created!.versionId, createDate: new Date(now) } };
  },
);

export const deletePolicyVersion = iamOp<{ policyArn: string; versionId: string }, Record<string, never>>('DeletePolicyVersion', false, async (svc, call, input, audit) => {
  const p = await customerPolicy(svc, call, input.policyArn, 'DeletePolicyVersion', audit);
  const versionId = checkVersionId(input.versionId);
  audit.detail('versionId', versionId);
  await svc.identity.updatePolicy(p.arn, (rec) => {
    if (!rec.versions.some((v) => v.versionId === versionId)) throw new NoSuchEntityException(`Policy ${p.arn} version ${versionId} does not exist or is not attachable.`);
    if (rec.defaultVersionId === versionId) throw new DeleteConflictException('Cannot delete the default version of a policy.');
    rec.versions = rec.versions.filter((v) => v.versionId !== versionId);
    rec.updatedAt = svc.clock.now();
  });
  return {};
});

export const deletePolicy = iamOp<{ policyArn: string }, Record<string, never>>('DeletePolicy', false, async (svc, call, input, audit) => {
  if (input.policyArn && MANAGED_POLICIES.has(input.policyArn)) {
    await authorizeIam(svc, call, 'DeletePolicy', input.policyArn, audit);
    throw new InvalidInputException(`Policy ${input.policyArn} is an AWS managed policy and cannot be deleted.`);
  }
  const p = await customerPolicy(svc, call, input.policyArn, 'DeletePolicy', audit);
  await svc.identity.deletePolicy(p.arn);
  return {};
});
