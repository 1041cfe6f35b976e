import { IamValidationError, InvalidInputException } from '../../errors/index.js';
import { parsePolicy } from '../../policy/index.js';
import type { AuditDraft, CallContext, Services } from '../context.js';
import { authorizeAccount } from '../common.js';

export const IAM_SOURCE = 'iam.amazonaws.com';
export const STS_SOURCE = 'sts.amazonaws.com';

/** AWS's name pattern for users, groups, roles and policies: `[\w+=,.@-]+`. */
const NAME = /^[\w+=,.@-]+$/;

export function checkName(value: string | undefined, field: string, max: number): string {
  if (value === undefined || value === '') throw new IamValidationError(`1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must not be null`);
  if (value.length > max) throw new IamValidationError(`1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must have length less than or equal to ${max}`);
  if (!NAME.test(value)) throw new IamValidationError(`1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+`);
  return value;
}

export function checkPath(value: string | undefined): string {
  const path = value ?? '/';
  if (path.length > 512 || !/^(\/|\/[\u0021-\u007E]+\/)$/.test(path)) {
    throw new IamValidationError(`1 validation error detected: Value at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)`);
  }
  return path;
}

/** An identity policy: valid JSON in the policy language, no Principal (MalformedPolicyDocument otherwise). */
export function checkIdentityPolicy(doc: string | undefined): string {
  if (doc === undefined || doc === '') throw new IamValidationError(`1 validation error detected: Value at 'policyDocument' failed to satisfy constraint: Member must not be null`);
  if (doc.length > 131072) throw new IamValidationError(`1 validation error detected: Value at 'policyDocument' failed to satisfy constraint: Member must have length less than or equal to 131072`);
  parsePolicy(doc, { requirePrincipal: false });
  return doc;
}

export function checkTags(tags: { key: string; value: string }[] | undefined): { key: string; value: string }[] {
  const out = tags ?? [];
  const seen = new Set<string>();
  for (const t of out) {
    if (!t.key || t.key.length > 128) throw new IamValidationError(`1 validation error detected: Value at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128`);
    if (t.value.length > 256) throw new IamValidationError(`1 validation error detected: Value at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256`);
    if (t.key.toLowerCase().startsWith('aws:')) throw new InvalidInputException('Tag keys starting with "aws:" are reserved.');
    if (seen.has(t.key.toLowerCase())) throw new InvalidInputException('Duplicate tag keys found. Please note that Tag keys are case insensitive.');
    seen.add(t.key.toLowerCase());
  }
  if (out.length > 50) throw new IamValidationError('1 validation error detected: Value at \'tags\' failed to satisfy constraint: Member must have length less than or equal to 50');
  return out;
}

export function userArn(acct: string, name: string, path = '/'): string {
  return `arn:aws:iam::${acct}:user${path}${name}`;
}
export function groupArn(acct: string, name: string, path = '/'): string {
  return `arn:aws:iam::${acct}:group${path}${name}`;
}
export function roleArn(acct: string, name: string, path = '/'): string {
  return `arn:aws:iam::${acct}:role${path}${name}`;
}

/** IAM calls: identity policies decide (`iam:<Action>` on the entity's ARN); root may do everything. */
export function authorizeIam(svc: Services, call: CallContext, action: string, resource: string, audit: AuditDraft): Promise<void> {
  return authorizeAccount(svc, call, action, audit, resource, 'iam');
}

/** Simple offset pagination for IAM lists (Marker is opaque to clients). */
export function pageOf<T>(items: T[], marker: string | undefined, maxItems: number | undefined): { items: T[]; isTruncated: boolean; marker?: string } {
  const max = maxItems ?? 100;
  if (!Number.isInteger(max) || max < 1 || max > 1000) throw new IamValidationError(`1 validation error detected: Value at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000`);
  let start = 0;
  if (marker !== undefined) {
    const m = /^o(\d+)$/.exec(Buffer.from(marker, 'base64url').toString('utf8'));
    if (!m) throw new InvalidInputException('Invalid Marker.');
    start = Number(m[1]);
  }
  const slice = items.slice(start, start + max);
  const more = start + max < items.length;
  return more ? { items: slice, isTruncated: true, marker: Buffer.from(`o${start + max}`).toString('base64url') } : { items: slice, isTruncated: false };
}
