/** Stored shapes of IAM identities. Times are epoch milliseconds. Secrets never appear here in the clear. */

export type AccessKeyStatus = 'Active' | 'Inactive';

export interface TagRecord {
  readonly key: string;
  readonly value: string;
}

/** What users, groups and roles share: inline policies by name, and attached managed policy ARNs. */
export interface PolicyHolder {
  inlinePolicies: Record<string, string>;
  attachedPolicies: string[];
}

export interface UserRecord extends PolicyHolder {
  readonly userName: string;
  /** AIDA + 17 characters, AWS's `aws:userid` for a user. */
  readonly userId: string;
  readonly arn: string;
  readonly path: string;
  readonly accountId: string;
  readonly createdAt: number;
  tags: TagRecord[];
  groups: string[];
  /** Set by offboarding: the user stays on record (for the audit trail and reviews) but can do nothing. */
  offboardedAt?: number;
}

export interface GroupRecord extends PolicyHolder {
  readonly groupName: string;
  readonly groupId: string;
  readonly arn: string;
  readonly path: string;
  readonly accountId: string;
  readonly createdAt: number;
  members: string[];
}

export interface RoleRecord extends PolicyHolder {
  readonly roleName: string;
  readonly roleId: string;
  readonly arn: string;
  readonly path: string;
  readonly accountId: string;
  readonly createdAt: number;
  description: string;
  assumeRolePolicyDocument: string;
  maxSessionDuration: number;
  tags: TagRecord[];
}

export interface AccessKeyRecord {
  readonly accessKeyId: string;
  readonly accountId: string;
  readonly kind: 'root' | 'user' | 'session';
  readonly userName?: string;
  /** A user key's user ARN (with its path). */
  readonly userArn?: string;
  readonly userId: string;
  status: AccessKeyStatus;
  readonly createdAt: number;
  /** base64 of the barrier-sealed secret access key */
  readonly sealedSecret: string;
  // ---- sessions (kind 'session') ----
  readonly roleName?: string;
  readonly roleArn?: string;
  readonly roleId?: string;
  readonly sessionName?: string;
  readonly expiresAt?: number;
  /** SHA-256 (hex) of the session token: the token itself is shown once and never stored. */
  readonly tokenSha256?: string;
  /** The principal ARN that called AssumeRole. */
  readonly sourceArn?: string;
  /** The user who started the session, directly or through a chain of sessions. */
  readonly sourceUserName?: string;
  endedAt?: number;
}

export interface LastUsed {
  readonly time: number;
  readonly serviceName: string;
  readonly region: string;
}

/** One version of a customer-managed policy. Versions are immutable; one is the default (in force). */
export interface PolicyVersionRecord {
  /** `v1`, `v2`, ... never reused within a policy. */
  readonly versionId: string;
  readonly document: string;
  readonly createdAt: number;
}

/** A customer-managed policy (IAM CreatePolicy): attachable to users, groups and roles by ARN. */
export interface ManagedPolicyRecord {
  readonly policyName: string;
  /** ANPA + 17 characters. */
  readonly policyId: string;
  readonly arn: string;
  readonly path: string;
  readonly accountId: string;
  readonly description: string;
  readonly createdAt: number;
  updatedAt: number;
  defaultVersionId: string;
  versions: PolicyVersionRecord[];
  nextVersion: number;
  tags: TagRecord[];
}
