/**
 * The IAM and STS actions: form input -> operation input, operation output -> XML result.
 * Wire names live only here (STYLE.md §12).
 */
import * as ops from '../../operations/index.js';
import type { AccessKeyRecord, GroupRecord, PolicyVersionView, PolicyView, RoleRecord, TagRecord, UserRecord } from '../../operations/index.js';
import type { Operation } from '../../operations/index.js';
import type { Form } from './form.js';
import type { XmlValue } from './xml.js';

export interface QueryRoute {
  readonly op: Operation<any, any>;
  readonly decode: (f: Form) => unknown;
  readonly encode: (out: any) => XmlValue;
}

function r<I, O>(op: Operation<I, O>, decode: (f: Form) => I, encode: (out: O) => XmlValue): QueryRoute {
  return { op, decode, encode };
}

// AWS returns policy documents URL-encoded (RFC 3986) in IAM answers.
const policyText = (s: string) => encodeURIComponent(s);
const tags = (t: readonly TagRecord[]) => t.map((x) => ({ Key: x.key, Value: x.value }));
const user = (u: UserRecord): XmlValue => ({
  Path: u.path, UserName: u.userName || undefined, UserId: u.userId, Arn: u.arn, CreateDate: new Date(u.createdAt), Tags: u.tags.length ? tags(u.tags) : undefined,
});
const group = (g: GroupRecord): XmlValue => ({ Path: g.path, GroupName: g.groupName, GroupId: g.groupId, Arn: g.arn, CreateDate: new Date(g.createdAt) });
const role = (x: RoleRecord): XmlValue => ({
  Path: x.path, RoleName: x.roleName, RoleId: x.roleId, Arn: x.arn, CreateDate: new Date(x.createdAt),
  AssumeRolePolicyDocument: policyText(x.assumeRolePolicyDocument), Description: x.description || undefined,
  MaxSessionDuration: x.maxSessionDuration, Tags: x.tags.length ? tags(x.tags) : undefined,
});
const keyMeta = (k: AccessKeyRecord): XmlValue => ({ UserName: k.userName, AccessKeyId: k.accessKeyId, Status: k.status, CreateDate: new Date(k.createdAt) });
const managedPolicy = (p: PolicyView): XmlValue => ({
  PolicyName: p.policyName, PolicyId: p.policyId, Arn: p.arn, Path: p.path, DefaultVersionId: p.defaultVersionId, AttachmentCount: p.attachmentCount,
  PermissionsBoundaryUsageCount: 0, IsAttachable: p.isAttachable, Description: p.description, CreateDate: p.createDate, UpdateDate: p.updateDate,
  Tags: p.tags.length ? tags(p.tags) : undefined,
});
const policyVersion = (v: PolicyVersionView): XmlValue => ({
  Document: v.document === undefined ? undefined : policyText(v.document), VersionId: v.versionId, IsDefaultVersion: v.isDefaultVersion, CreateDate: v.createDate,
});
const paged = (o: { isTruncated: boolean; marker?: string }) => ({ IsTruncated: o.isTruncated, Marker: o.marker });
const none = () => undefined;
const paging = (f: Form) => ({ marker: f.str('Marker'), maxItems: f.int('MaxItems') });

function policyRoutes(word: 'User' | 'Group' | 'Role', nameField: 'userName' | 'groupName' | 'roleName', o: Record<string, Operation<any, any>>): Record<string, QueryRoute> {
  const wireName = `${word}Name`;
  const name = (f: Form) => ({ [nameField]: f.str(wireName) });
  return {
    [`Put${word}Policy`]: r(o[`put${word}Policy`]!, (f) => ({ ...name(f), policyName: f.str('PolicyName'), policyDocument: f.str('PolicyDocument') }), none),
    [`Get${word}Policy`]: r(o[`get${word}Policy`]!, (f) => ({ ...name(f), policyName: f.str('PolicyName') }), (out: { name: string; policyName: string; policyDocument: string }) => ({
      [wireName]: out.name, PolicyName: out.policyName, PolicyDocument: policyText(out.policyDocument),
    })),
    [`List${word}Policies`]: r(o[`list${word}Policies`]!, (f) => ({ ...name(f), ...paging(f) }), (out: { policyNames: string[]; isTruncated: boolean; marker?: string }) => ({ PolicyNames: out.policyNames, ...paged(out) })),
    [`Delete${word}Policy`]: r(o[`delete${word}Policy`]!, (f) => ({ ...name(f), policyName: f.str('PolicyName') }), none),
    [`Attach${word}Policy`]: r(o[`attach${word}Policy`]!, (f) => ({ ...name(f), policyArn: f.str('PolicyArn') }), none),
    [`Detach${word}Policy`]: r(o[`detach${word}Policy`]!, (f) => ({ ...name(f), policyArn: f.str('PolicyArn') }), none),
    [`ListAttached${word}Policies`]: r(o[`listAttached${word}Policies`]!, (f) => ({ ...name(f), pathPrefix: f.str('PathPrefix'), ...paging(f) }), (out: { attachedPolicies: { policyName: string; policyArn: string }[]; isTruncated: boolean; marker?: string }) => ({
      AttachedPolicies: out.attachedPolicies.map((p) => ({ PolicyName: p.policyName, PolicyArn: p.policyArn })), ...paged(out),
    })),
  };
}

const o = ops as unknown as Record<string, Operation<any, any>>;

export const IAM_ROUTES: Readonly<Record<string, QueryRoute>> = {
  CreateUser: r(ops.createUser, (f) => ({ userName: f.str('UserName')!, path: f.str('Path'), tags: f.tags() }), (out) => ({ User: user(out.user) })),
  GetUser: r(ops.getUser, (f) => ({ userName: f.str('UserName') }), (out) => ({ User: user(out.user) })),
  ListUsers: r(ops.listUsers, (f) => ({ pathPrefix: f.str('PathPrefix'), ...paging(f) }), (out) => ({ Users: out.users.map(user), ...paged(out) })),
  DeleteUser: r(ops.deleteUser, (f) => ({ userName: f.str('UserName')! }), none),
  TagUser: r(ops.tagUser, (f) => ({ userName: f.str('UserName')!, tags: f.tags() ?? [] }), none),
  UntagUser: r(ops.untagUser, (f) => ({ userName: f.str('UserName')!, tagKeys: f.strList('TagKeys') ?? [] }), none),
  ListUserTags: r(ops.listUserTags, (f) => ({ userName: f.str('UserName')!, ...paging(f) }), (out) => ({ Tags: tags(out.tags), ...paged(out) })),
  CreateAccessKey: r(ops.createAccessKey, (f) => ({ userName: f.str('UserName') }), (out) => ({
    AccessKey: { UserName: out.accessKey.userName, AccessKeyId: out.accessKey.accessKeyId, Status: out.accessKey.status, SecretAccessKey: out.secretAccessKey, CreateDate: new Date(out.accessKey.createdAt) },
  })),
  ListAccessKeys: r(ops.listAccessKeys, (f) => ({ userName: f.str('UserName'), ...paging(f) }), (out) => ({ AccessKeyMetadata: out.accessKeys.map(keyMeta), ...paged(out) })),
  UpdateAccessKey: r(ops.updateAccessKey, (f) => ({ userName: f.str('UserName'), accessKeyId: f.str('AccessKeyId')!, status: f.str('Status')! }), none),
  DeleteAccessKey: r(ops.deleteAccessKey, (f) => ({ userName: f.str('UserName'), accessKeyId: f.str('AccessKeyId')! }), none),
  GetAccessKeyLastUsed: r(ops.getAccessKeyLastUsed, (f) => ({ accessKeyId: f.str('AccessKeyId')! }), (out) => ({
    UserName: out.userName,
    AccessKeyLastUsed: out.lastUsed
      ? { LastUsedDate: new Date(out.lastUsed.time), ServiceName: out.lastUsed.serviceName, Region: out.lastUsed.region }
      : { ServiceName: 'N/A', Region: 'N/A' },
  })),
  CreateGroup: r(ops.createGroup, (f) => ({ groupName: f.str('GroupName')!, path: f.str('Path') }), (out) => ({ Group: group(out.group) })),
  GetGroup: r(ops.getGroup, (f) => ({ groupName: f.str('GroupName')!, ...paging(f) }), (out) => ({ Group: group(out.group), Users: out.users.map(user), ...paged(out) })),
  DeleteGroup: r(ops.deleteGroup, (f) => ({ groupName: f.str('GroupName')! }), none),
  AddUserToGroup: r(ops.addUserToGroup, (f) => ({ groupName: f.str('GroupName')!, userName: f.str('UserName')! }), none),
  RemoveUserFromGroup: r(ops.removeUserFromGroup, (f) => ({ groupName: f.str('GroupName')!, userName: f.str('UserName')! }), none),
  ListGroupsForUser: r(ops.listGroupsForUser, (f) => ({ userName: f.str('UserName')!, ...paging(f) }), (out) => ({ Groups: out.groups.map(group), ...paged(out) })),
  CreateRole: r(ops.createRole, (f) => ({
    roleName: f.str('RoleName')!, path: f.str('Path'), assumeRolePolicyDocument: f.str('AssumeRolePolicyDocument')!, description: f.str('Description'),
    maxSessionDuration: f.int('MaxSessionDuration'), tags: f.tags(),
  }), (out) => ({ Role: role(out.role) })),
  GetRole: r(ops.getRole, (f) => ({ roleName: f.str('RoleName')! }), (out) => ({ Role: role(out.role) })),
  ListRoles: r(ops.listRoles, (f) => ({ pathPrefix: f.str('PathPrefix'), ...paging(f) }), (out) => ({ Roles: out.roles.map(role), ...paged(out) })),
  DeleteRole: r(ops.deleteRole, (f) => ({ roleName: f.str('RoleName')! }), none),
  UpdateAssumeRolePolicy: r(ops.updateAssumeRolePolicy, (f) => ({ roleName: f.str('RoleName')!, policyDocument: f.str('PolicyDocument')! }), none),
  CreatePolicy: r(ops.createPolicy, (f) => ({
    policyName: f.str('PolicyName')!, path: f.str('Path'), policyDocument: f.str('PolicyDocument')!, description: f.str('Description'), tags: f.tags(),
  }), (out) => ({ Policy: managedPolicy(out.policy) })),
  GetPolicy: r(ops.getPolicy, (f) => ({ policyArn: f.str('PolicyArn')! }), (out) => ({ Policy: managedPolicy(out.policy) })),
  GetPolicyVersion: r(ops.getPolicyVersion, (f) => ({ policyArn: f.str('PolicyArn')!, versionId: f.str('VersionId')! }), (out) => ({ PolicyVersion: policyVersion(out.policyVersion) })),
  ListPolicies: r(ops.listPolicies, (f) => ({
    scope: f.str('Scope'), onlyAttached: f.bool('OnlyAttached'), pathPrefix: f.str('PathPrefix'), ...paging(f),
  }), (out) => ({ Policies: out.policies.map(managedPolicy), ...paged(out) })),
  ListPolicyVersions: r(ops.listPolicyVersions, (f) => ({ policyArn: f.str('PolicyArn')!, ...paging(f) }), (out) => ({ Versions: out.versions.map(policyVersion), ...paged(out) })),
  CreatePolicyVersion: r(ops.createPolicyVersion, (f) => ({
    policyArn: f.str('PolicyArn')!, policyDocument: f.str('PolicyDocument')!, setAsDefault: f.bool('SetAsDefault'),
  }), (out) => ({ PolicyVersion: policyVersion(out.policyVersion) })),
  DeletePolicyVersion: r(ops.deletePolicyVersion, (f) => ({ policyArn: f.str('PolicyArn')!, versionId: f.str('VersionId')! }), none),
  DeletePolicy: r(ops.deletePolicy, (f) => ({ policyArn: f.str('PolicyArn')! }), none),
  ...policyRoutes('User', 'userName', o),
  ...policyRoutes('Group', 'groupName', o),
  ...policyRoutes('Role', 'roleName', o),
};

export const STS_ROUTES: Readonly<Record<string, QueryRoute>> = {
  GetCallerIdentity: r(ops.getCallerIdentity, () => ({}), (out) => ({ UserId: out.userId, Account: out.account, Arn: out.arn })),
  AssumeRole: r(ops.assumeRole, (f) => ({ roleArn: f.str('RoleArn')!, roleSessionName: f.str('RoleSessionName')!, durationSeconds: f.int('DurationSeconds') }), (out) => ({
    Credentials: {
      AccessKeyId: out.credentials.accessKeyId, SecretAccessKey: out.credentials.secretAccessKey, SessionToken: out.credentials.sessionToken, Expiration: out.credentials.expiration,
    },
    AssumedRoleUser: { AssumedRoleId: out.assumedRoleUser.assumedRoleId, Arn: out.assumedRoleUser.arn },
  })),
};

export const QUERY_SERVICES = {
  iam: { routes: IAM_ROUTES, namespace: 'https://iam.amazonaws.com/doc/2010-05-08/', version: '2010-05-08', eventSource: 'iam.amazonaws.com' },
  sts: { routes: STS_ROUTES, namespace: 'https://sts.amazonaws.com/doc/2011-06-15/', version: '2011-06-15', eventSource: 'sts.amazonaws.com' },
} as const;
