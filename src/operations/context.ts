import type { Principal } from '../types/index.js';
import type { BackupRegistry, CustomKeyStoreRepository, KeyRepository, UsageCounter } from '../keys/index.js';
import type { AuditContextKey, HsmDirectory, ImportParameterStore, KeyStore } from '../keystore/index.js';
import type { IdentityStore } from '../identity/index.js';
import type { AuditEvent, AuditLog, WebhookAddressGuard } from '../audit/index.js';

export interface Clock {
  /** epoch milliseconds */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** What operations act through. Built once by main.ts. */
export interface Services {
  readonly keys: KeyRepository;
  readonly keystore: KeyStore;
  readonly identity: IdentityStore;
  readonly customKeyStores: CustomKeyStoreRepository;
  /** BYOK wrapping keys and import tokens (GetParametersForImport / ImportKeyMaterial). */
  readonly importParameters: ImportParameterStore;
  /** The HSMs declared with --hsm (custom key stores name them by CloudHsmClusterId). */
  readonly hsms: HsmDirectory;
  readonly audit: AuditLog;
  /** HMACs encryption-context values in audit events for accounts that ask for it; absent: values as given. */
  readonly auditContextKey?: AuditContextKey;
  /** Per-version use counts (ListKeyVersions), kept in memory and flushed by main.ts. */
  readonly usage: UsageCounter;
  /** Registered backups and the keys they depend on (RegisterBackup, ListBackups). */
  readonly backups: BackupRegistry;
  /** Where account webhooks may point (the operator's --account-webhook-allow widens it); PutAlertWebhook checks literal IPs. */
  readonly accountWebhookGuard: WebhookAddressGuard;
  readonly clock: Clock;
  /** Logs internal failures with the request id; never sent to clients. */
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Who called, from where, established by the transport. */
export interface CallContext {
  readonly requestId: string;
  /** The caller's account: with region, the namespace keys are created and found in. */
  readonly accountId: string;
  readonly principal: Principal;
  readonly region: string;
  readonly sourceIp: string;
  readonly userAgent: string;
  readonly secureTransport: boolean;
  readonly tlsVersion?: string;
}

/** What an operation learns while it runs and the audit event must carry. */
export class AuditDraft {
  readonly resources: { arn: string; keyVersion?: number }[] = [];
  encryptionContext: Record<string, string> | undefined;
  decision: { effect: string; reason: string } | undefined;
  details: Record<string, unknown> | undefined;

  key(arn: string, keyVersion?: number): void {
    const existing = this.resources.find((r) => r.arn === arn && (keyVersion === undefined || r.keyVersion === undefined));
    if (existing) {
      if (keyVersion !== undefined) existing.keyVersion = keyVersion;
      return;
    }
    this.resources.push(keyVersion === undefined ? { arn } : { arn, keyVersion });
  }

  detail(name: string, value: unknown): void {
    (this.details ??= {})[name] = value;
  }
}

export interface Operation<I, O> {
  /** The AWS operation name, e.g. `Encrypt`. */
  readonly name: string;
  readonly eventSource: string;
  readonly readOnly: boolean;
  run(svc: Services, call: CallContext, input: I, audit: AuditDraft): Promise<O>;
}

export type AnyOperation = Operation<any, any>;

export type { AuditEvent };
