import type { AuditEvent } from './event.js';
import { resourceTypeOf, usernameOf } from './audit-db.js';

/** CloudTrail's record (eventVersion 1.08 field names) for one of our events: LookupEvents' CloudTrailEvent. */
export function toCloudTrailRecord(e: AuditEvent): Record<string, unknown> {
  const p = e.principal;
  const userIdentity = p
    ? {
      type: p.type,
      principalId: p.type === 'Root' ? p.accountId : p.accessKeyId,
      arn: p.arn,
      accountId: p.accountId,
      accessKeyId: p.accessKeyId,
      ...(p.userName ? { userName: p.userName } : {}),
    }
    : { type: 'Unknown', ...(e.accessKeyId ? { accessKeyId: e.accessKeyId } : {}) };
  const requestParameters: Record<string, unknown> = {};
  const keys = e.resources.filter((r) => resourceTypeOf(r.arn) === 'AWS::KMS::Key');
  if (keys[0]) requestParameters.keyId = keys[0].arn;
  if (e.encryptionContext) requestParameters.encryptionContext = e.encryptionContext;
  const additionalEventData: Record<string, unknown> = {};
  const versions = e.resources.filter((r) => r.keyVersion !== undefined).map((r) => ({ keyArn: r.arn, keyVersion: r.keyVersion }));
  if (versions.length > 0) additionalEventData.keyVersions = versions;
  if (e.decision) additionalEventData.authorization = e.decision;
  if (e.details) additionalEventData.details = e.details;
  return {
    eventVersion: '1.08',
    userIdentity,
    eventTime: e.eventTime.replace(/\.\d{3}Z$/, 'Z'),
    eventSource: e.eventSource,
    eventName: e.eventName,
    awsRegion: e.awsRegion,
    sourceIPAddress: e.sourceIPAddress,
    userAgent: e.userAgent,
    ...(e.errorCode ? { errorCode: e.errorCode } : {}),
    ...(e.errorMessage ? { errorMessage: e.errorMessage } : {}),
    requestParameters: Object.keys(requestParameters).length > 0 ? requestParameters : null,
    responseElements: null,
    ...(Object.keys(additionalEventData).length > 0 ? { additionalEventData } : {}),
    requestID: e.requestId,
    eventID: e.eventId,
    readOnly: e.readOnly,
    resources: e.resources.map((r) => ({ accountId: p?.accountId ?? r.arn.split(':')[4], type: resourceTypeOf(r.arn), ARN: r.arn })),
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: p?.accountId ?? '',
    eventCategory: 'Management',
    ...(e.tlsVersion ? { tlsDetails: { tlsVersion: e.tlsVersion } } : {}),
  };
}

/** LookupEvents' Event for one of our events (the SDK's field names, camelCase inside). */
export function toLookupEvent(e: AuditEvent): {
  eventId: string; eventName: string; readOnly: string; accessKeyId?: string; eventTime: Date; eventSource: string;
  username?: string; resources: { resourceType: string; resourceName: string }[]; cloudTrailEvent: string;
} {
  return {
    eventId: e.eventId!,
    eventName: e.eventName,
    readOnly: String(e.readOnly),
    ...(e.accessKeyId ? { accessKeyId: e.accessKeyId } : {}),
    eventTime: new Date(e.eventTime),
    eventSource: e.eventSource,
    ...(usernameOf(e.principal) ? { username: usernameOf(e.principal)! } : {}),
    resources: e.resources.map((r) => ({ resourceType: resourceTypeOf(r.arn), resourceName: r.arn })),
    cloudTrailEvent: JSON.stringify(toCloudTrailRecord(e)),
  };
}
