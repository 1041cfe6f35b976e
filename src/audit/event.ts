import type { AuditVerification } from './verify.js';

export interface StoredAlert extends Alert {
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}
import type { LastUseQuery, LastUseRow, LookupQuery } from './audit-db.js';

/**
 * One audit event per API call, allowed, denied or failed. CloudTrail-shaped names where CloudTrail
 * has them. Never plaintext, data keys, secrets or signatures.
 */
export interface AuditEvent {
  /** Unique id (CloudTrail's eventId); the log assigns one when absent. */
  eventId?: string;
  eventTime: string;
  eventName: string;
  eventSource: string;
  awsRegion: string;
  requestId: string;
  sourceIPAddress: string;
  userAgent: string;
  tlsVersion?: string;
  readOnly: boolean;
  principal?: {
    type: string;
    arn: string;
    accountId: string;
    accessKeyId: string;
    userName?: string;
    isRoot: boolean;
  };
  /** The access key id presented, also when authentication failed. */
  accessKeyId?: string;
  resources: { arn: string; keyVersion?: number }[];
  encryptionContext?: Record<string, string>;
  decision?: { effect: string; reason: string };
  /** Extra, operation-specific facts (e.g. a deletion date, a rotation opt-out). */
  details?: Record<string, unknown>;
  errorCode?: string;
  errorMessage?: string;
}

export interface ExportQuery {
  /** Only events after this position in the chain (0: from the start). */
  afterSeq: number;
  /** Only this account's events (and the unattributed ones: authentication failures). Absent: all (offline). */
  accountId?: string;
  /** Inclusive time range over eventTime, epoch ms. */
  startMs?: number;
  endMs?: number;
  limit: number;
}

export interface ExportPage {
  /** In chain order; `record` is the CloudTrail record as JSON text. */
  events: { seq: number; record: string }[];
  /** The newest position in the chain when the page was read (an exporter stops there). */
  headSeq: number;
  /** The oldest position still stored (retention removes older ones); 0 when the log is empty. */
  firstSeq: number;
}

export interface AuditHealth {
  readonly healthy: boolean;
  /** Why not, in words an operator can act on. */
  readonly problems: readonly string[];
}

/** Signs the audit log's digests (the Ed25519 key the keystore holds). */
export interface AuditSigner {
  sign(data: Buffer): Buffer;
  readonly publicKeyPem: string;
}

export interface AuditLog {
  /** Resolves once the event is durably recorded. Rejects if it cannot be; the caller then fails the request. */
  record(event: AuditEvent): Promise<void>;
  /** Whether events can be written now, and if not why (for /healthz). */
  health(): AuditHealth;
  /** Checks the chain and the signed digests; names the first event altered, removed or reordered. */
  verify(): Promise<AuditVerification>;
  /** Events of the query's account and region, newest first (LookupEvents, `keyhold audit`). */
  lookup(query: LookupQuery): Promise<{ seq: number; event: AuditEvent }[]>;
  /** Events in chain order after a position, as CloudTrail records (export to a SIEM). */
  exportEvents(query: ExportQuery): Promise<ExportPage>;
  /** Last successful use per principal and key (GetKeyLastUsage, access review, offboarding). */
  lastUse(query: LastUseQuery): Promise<LastUseRow[]>;
  /** Alerts of an account, newest first. */
  listAlerts(query: { accountId: string; includeAcknowledged: boolean; limit: number }): Promise<StoredAlert[]>;
  /** Marks an alert acknowledged (the first acknowledgement stays); false if the account has no such alert. */
  ackAlert(alertId: string, accountId: string, by: string): Promise<boolean>;
  close(): Promise<void>;
}

export type Severity = 'low' | 'medium' | 'high' | 'critical';

export interface Alert {
  alertId: string;
  time: string;
  severity: Severity;
  rule: string;
  accountId: string | null;
  principalArn: string | null;
  accessKeyId: string | null;
  keyArn: string | null;
  summary: string;
  /** The events that triggered it (eventId). */
  eventIds: string[];
}

