import * as ops from '../../operations/index.js';
import { route, type Route } from './kms-routes.js';
import { bool, int, list, map, str, struct, timestamp } from './schema.js';

const KeyIdType = str({ min: 1, max: 2048 });
const LimitType = int({ min: 1, max: 1000 });
const MarkerType = str({ min: 1, max: 1024, pattern: /^[\u0020-\u00FF]*$/ });
const AlertSettingsOutput = struct(
  { AccountId: str(), SourceCidrAllowlist: list(str()), AutoDeactivateOnCritical: bool() },
  ['AccountId', 'SourceCidrAllowlist', 'AutoDeactivateOnCritical'],
);
const AccountSettingsOutput = struct(
  { AccountId: str(), DefaultRotationPeriodInDays: int(), SeparationOfDuties: bool(), AuditEncryptionContextHmac: bool() },
  ['AccountId', 'DefaultRotationPeriodInDays', 'SeparationOfDuties', 'AuditEncryptionContextHmac'],
);

/**
 * Keyhold's own operations, beyond the AWS KMS model (version retirement, audit, backups registry,
 * offboarding, ...). They use the same transport as KMS: AWS JSON 1.1, SigV4 with service `kms`,
 * X-Amz-Target `KeyholdService.<Operation>`; `keyhold` client commands call them through
 * src/cli/keyhold-client.ts. Each entry is typed like KMS_ROUTES (use `route` from kms-routes.ts).
 */
export const KEYHOLD_ROUTES = {
  VerifyAuditLog: route(
    struct({}),
    struct({
      Valid: bool(), EventsChecked: int(), DigestsChecked: int(), FirstSeq: int(), LastSeq: int(), SignedThroughSeq: int(),
      RetainedThroughSeq: int(), PublicKeyFingerprint: str(),
      Problem: struct({ Kind: str({ enum: ['altered', 'removed', 'reordered', 'digest'] }), Seq: int(), EventId: str(), Message: str() }, ['Kind', 'Message']),
    }, ['Valid', 'EventsChecked', 'DigestsChecked', 'FirstSeq', 'LastSeq', 'SignedThroughSeq', 'RetainedThroughSeq', 'PublicKeyFingerprint']),
    ops.verifyAuditLog,
  ),
  ExportAuditEvents: route(
    struct({ AfterSeq: int({ min: 0 }), StartTime: timestamp(), EndTime: timestamp(), Limit: int({ min: 1, max: 1000 }) }),
    struct({
      AccountId: str(), Events: list(struct({ Seq: int(), CloudTrailEvent: str() }, ['Seq', 'CloudTrailEvent'])), HeadSeq: int(), FirstSeq: int(),
    }, ['AccountId', 'Events', 'HeadSeq', 'FirstSeq']),
    ops.exportAuditEvents,
  ),
  ListAlerts: route(
    struct({ IncludeAcknowledged: bool(), Limit: int({ min: 1, max: 1000 }) }),
    struct({
      Alerts: list(struct({
        AlertId: str(), Time: timestamp(), Severity: str(), Rule: str(), Summary: str(), PrincipalArn: str(), AccessKeyId: str(),
        KeyArn: str(), EventIds: list(str()), Acknowledged: bool(), AcknowledgedAt: timestamp(), AcknowledgedBy: str(),
      }, ['AlertId', 'Time', 'Severity', 'Rule', 'Summary', 'EventIds', 'Acknowledged'])),
    }, ['Alerts']),
    ops.listAlerts,
  ),
  AcknowledgeAlert: route(struct({ AlertId: str({ min: 1, max: 64 }) }, ['AlertId']), struct({}), ops.acknowledgeAlert),
  GetAlertSettings: route(struct({}), AlertSettingsOutput, ops.getAlertSettings),
  PutAlertSettings: route(
    struct({ SourceCidrAllowlist: list(str({ min: 1, max: 64 })), AutoDeactivateOnCritical: bool() }),
    AlertSettingsOutput,
    ops.putAlertSettings,
  ),
  PutAlertWebhook: route(
    struct({ Url: str({ min: 1, max: 2048 }) }, ['Url']),
    struct({ WebhookId: str(), Url: str(), Secret: str(), CreationDate: timestamp() }, ['WebhookId', 'Url', 'Secret', 'CreationDate']),
    ops.putAlertWebhook,
  ),
  ListAlertWebhooks: route(
    struct({}),
    struct({ Webhooks: list(struct({ WebhookId: str(), Url: str(), CreationDate: timestamp() }, ['WebhookId', 'Url', 'CreationDate'])) }, ['Webhooks']),
    ops.listAlertWebhooks,
  ),
  DeleteAlertWebhook: route(struct({ WebhookId: str({ min: 1, max: 64 }) }, ['WebhookId']), struct({}), ops.deleteAlertWebhook),
  GetLastUsage: route(
    struct({ PrincipalArn: str({ min: 1, max: 2048 }), KeyId: str({ min: 1, max: 2048 }), Limit: int({ min: 1, max: 1000 }) }),
    struct({
      Usage: list(struct({
        PrincipalArn: str(), KeyArn: str(), Operation: str(), Timestamp: timestamp(), CloudTrailEventId: str(), Count: int(),
      }, ['PrincipalArn', 'KeyArn', 'Operation', 'Timestamp', 'CloudTrailEventId', 'Count'])),
    }, ['Usage']),
    ops.getLastUsage,
  ),
  // Version retirement and per-version use (issue 3)
  SetMinimumDecryptionVersion: route(
    struct({ KeyId: KeyIdType, MinimumDecryptionVersion: int({ min: 1 }) }, ['KeyId', 'MinimumDecryptionVersion']),
    struct({ KeyId: str(), MinimumDecryptionVersion: int(), PreviousMinimumDecryptionVersion: int() }, ['KeyId', 'MinimumDecryptionVersion', 'PreviousMinimumDecryptionVersion']),
    ops.setMinimumDecryptionVersion,
  ),
  ListKeyVersions: route(
    struct({ KeyId: KeyIdType, Limit: LimitType, Marker: MarkerType }, ['KeyId']),
    struct({
      KeyId: str(), CurrentVersion: int(), MinimumDecryptionVersion: int(), Owner: str(), Creator: str(), OwnerActive: bool(),
      RotationOptOut: bool(), KeyRotationEnabled: bool(),
      Versions: list(struct({
        Version: int(), CreationDate: timestamp(), RotationType: str(), Current: bool(), Retired: bool(),
        EncryptCount: int(), DecryptCount: int(), LastUsedDate: timestamp(),
      }, ['Version', 'CreationDate', 'Current', 'Retired', 'EncryptCount', 'DecryptCount'])),
      NextMarker: str(), Truncated: bool(),
    }, ['KeyId', 'CurrentVersion', 'MinimumDecryptionVersion', 'Owner', 'Creator', 'OwnerActive', 'RotationOptOut', 'KeyRotationEnabled', 'Versions', 'Truncated']),
    ops.listKeyVersions,
  ),
  // Offboarding (issue 4): one audited step that revokes everything a user holds
  OffboardUser: route(
    struct({ UserName: str({ min: 1, max: 64, pattern: /^[\w+=,.@-]+$/ }), NoRotate: bool() }, ['UserName']),
    struct({
      UserName: str(), UserArn: str(), OffboardedAt: timestamp(),
      DeactivatedAccessKeys: list(str()),
      EndedSessions: list(struct({ AccessKeyId: str(), RoleArn: str(), SessionName: str() }, ['AccessKeyId', 'RoleArn', 'SessionName'])),
      RemovedFromGroups: list(str()), DeletedInlinePolicies: list(str()), DetachedPolicies: list(str()),
      RemovedGrants: list(struct({ KeyArn: str(), GrantId: str() }, ['KeyArn', 'GrantId'])),
      KeysUsable: list(struct({ KeyArn: str(), Actions: list(str()), Via: list(str()) }, ['KeyArn', 'Actions', 'Via'])),
      KeysDecrypted: list(struct({ KeyArn: str(), Count: int(), FirstTime: timestamp(), LastTime: timestamp() }, ['KeyArn', 'Count', 'FirstTime', 'LastTime'])),
      RotatedKeys: list(str()),
      NotRotated: list(struct({ KeyArn: str(), Reason: str() }, ['KeyArn', 'Reason'])),
    }, ['UserName', 'UserArn', 'OffboardedAt', 'DeactivatedAccessKeys', 'EndedSessions', 'RemovedFromGroups', 'DeletedInlinePolicies', 'DetachedPolicies', 'RemovedGrants', 'KeysUsable', 'KeysDecrypted', 'RotatedKeys', 'NotRotated']),
    ops.offboardUser,
  ),
  // Access review (issue 4): who can do what with each key, through what, last use, and flags
  ReviewAccess: route(
    struct({ KeyId: KeyIdType, PrincipalArn: str({ min: 1, max: 2048 }), UnusedDays: int({ min: 1, max: 36500 }) }),
    struct({
      AccountId: str(), Region: str(), GeneratedAt: timestamp(), UnusedDays: int(),
      Keys: list(struct({
        KeyArn: str(), KeyState: str(), Owner: str(), OwnerStatus: str(),
        Principals: list(struct({
          PrincipalArn: str(), PrincipalType: str(), Status: str(), Actions: list(str()),
          Via: list(struct({ Reason: str(), Actions: list(str()) }, ['Reason', 'Actions'])),
          NamedIn: list(str()), LastUsedDate: timestamp(), LastUsedOperation: str(), UseCount: int(), Flags: list(str()),
        }, ['PrincipalArn', 'PrincipalType', 'Status', 'Actions', 'Via', 'NamedIn', 'UseCount', 'Flags'])),
        Flags: list(struct({ Flag: str(), PrincipalArn: str(), Message: str() }, ['Flag', 'PrincipalArn', 'Message'])),
      }, ['KeyArn', 'KeyState', 'Owner', 'OwnerStatus', 'Principals', 'Flags'])),
    }, ['AccountId', 'Region', 'GeneratedAt', 'UnusedDays', 'Keys']),
    ops.reviewAccess,
  ),
  // Account settings: the rotation period new keys get (issue 3); the separation-of-duties guard (issue 4)
  GetAccountSettings: route(struct({}), AccountSettingsOutput, ops.getAccountSettings),
  UpdateAccountSettings: route(
    struct({ DefaultRotationPeriodInDays: int({ min: 90, max: 2560 }), SeparationOfDuties: bool(), AuditEncryptionContextHmac: bool() }),
    AccountSettingsOutput, ops.updateAccountSettings,
  ),
  // Backup registry (issue 6)
  RegisterBackup: route(
    struct({
      MessageId: str({ min: 64, max: 64 }), Location: str({ min: 1, max: 4096 }), SizeBytes: int({ min: 0 }), Suite: str({ min: 1, max: 128 }),
      WrappingKeys: list(struct({ KeyArn: str({ min: 1, max: 2048 }), KeyVersion: int({ min: 1 }) }, ['KeyArn'])),
      EncryptionContext: map(str()), Verified: bool(), VerifyMessage: str({ max: 4096 }),
    }, ['MessageId', 'Location', 'SizeBytes', 'Suite', 'WrappingKeys']),
    struct({ MessageId: str(), RegisteredDate: timestamp() }, ['MessageId', 'RegisteredDate']),
    ops.registerBackup,
  ),
  ListBackups: route(
    struct({ KeyId: KeyIdType, KeyVersion: int({ min: 1 }), AtRiskWithoutKeyId: KeyIdType }),
    struct({
      Backups: list(struct({
        MessageId: str(), Location: str(), SizeBytes: int(), Suite: str(),
        WrappingKeys: list(struct({ KeyArn: str(), KeyVersion: int(), KeyState: str(), Usable: bool() }, ['KeyArn', 'KeyState', 'Usable'])),
        EncryptionContext: map(str()), RegisteredDate: timestamp(), RegisteredBy: str(), Decryptable: bool(),
        LastVerifiedDate: timestamp(), LastVerifiedBy: str(), LastVerifyOk: bool(), LastVerifyMessage: str(),
      }, ['MessageId', 'Location', 'SizeBytes', 'Suite', 'WrappingKeys', 'EncryptionContext', 'RegisteredDate', 'RegisteredBy', 'Decryptable'])),
    }, ['Backups']),
    ops.listBackups,
  ),
  RecordBackupVerification: route(
    struct({ MessageId: str({ min: 64, max: 64 }), Location: str({ min: 1, max: 4096 }), Ok: bool(), Message: str({ max: 4096 }) }, ['MessageId', 'Ok']),
    struct({ MessageId: str(), LastVerifiedDate: timestamp(), Locations: list(str()) }, ['MessageId', 'LastVerifiedDate', 'Locations']),
    ops.recordBackupVerification,
  ),
  DeregisterBackup: route(
    struct({ MessageId: str({ min: 64, max: 64 }), Location: str({ min: 1, max: 4096 }) }, ['Location']),
    struct({ Backups: list(struct({ MessageId: str(), Location: str() }, ['MessageId', 'Location'])) }, ['Backups']),
    ops.deregisterBackup,
  ),
  RelocateBackup: route(
    struct({ MessageId: str({ min: 64, max: 64 }), Location: str({ min: 1, max: 4096 }), NewLocation: str({ min: 1, max: 4096 }) }, ['MessageId', 'Location', 'NewLocation']),
    struct({ MessageId: str(), Location: str(), PreviousLocation: str() }, ['MessageId', 'Location', 'PreviousLocation']),
    ops.relocateBackup,
  ),
} satisfies Record<string, Route>;

export const KEYHOLD_TARGET_PREFIX = 'KeyholdService.';
