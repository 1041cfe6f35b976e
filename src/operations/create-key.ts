import { randomUUID } from 'node:crypto';
import {
  CustomKeyStoreInvalidStateException, KeyUnavailableException, MalformedPolicyDocumentException, UnsupportedOperationException,
  ValidationException,
} from '../errors/index.js';
import { DAY_MS, DEFAULT_ROTATION_PERIOD_DAYS, keyArn, ownerOf, type KeyRecord } from '../keys/index.js';
import { defaultKeyPolicy, evaluate, parsePolicy } from '../policy/index.js';
import type { KeySpec, KeyUsage, Origin, Tag } from '../types/index.js';
import { assertSodForKeyPolicy } from './sod.js';
import { authorizeAccount, validateTags, MAX_TAGS_PER_KEY } from './common.js';
import type { Operation } from './context.js';
import { keyMetadata, type KeyMetadata } from './key-metadata.js';
import { storeInScope } from './custom-key-store-common.js';
import { TagException } from '../errors/index.js';

export interface CreateKeyInput {
  policy?: string;
  description?: string;
  keyUsage?: KeyUsage;
  customerMasterKeySpec?: KeySpec;
  keySpec?: KeySpec;
  origin?: Origin;
  customKeyStoreId?: string;
  bypassPolicyLockoutSafetyCheck?: boolean;
  tags?: Tag[];
  multiRegion?: boolean;
  xksKeyId?: string;
}

/**
 * PutKeyPolicy and CreateKey refuse a policy that would lock the caller out of changing it again,
 * unless the caller says BypassPolicyLockoutSafetyCheck.
 */
export function assertNoLockout(policy: string, principal: { arn: string; accountId: string }, arn: string): void {
  const decision = evaluate(parsePolicy(policy, { requirePrincipal: true }), { principal, action: 'kms:PutKeyPolicy', resource: arn });
  if (decision.effect !== 'Allow') {
    throw new MalformedPolicyDocumentException(
      'The new key policy will not allow you to update the key policy in the future.',
    );
  }
}

/** The tag by which a creator turns off the rotation-on default for a new key. */
export const ROTATION_OPT_OUT_TAG = { tagKey: 'KeyholdRotation', tagValue: 'disabled' } as const;

export const createKey: Operation<CreateKeyInput, { keyMetadata: KeyMetadata }> = {
  name: 'CreateKey',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'CreateKey', audit);
    if (input.keySpec && input.customerMasterKeySpec) {
      throw new ValidationException('You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.');
    }
    const keySpec = input.keySpec ?? input.customerMasterKeySpec ?? 'SYMMETRIC_DEFAULT';
    const keyUsage = input.keyUsage ?? 'ENCRYPT_DECRYPT';
    const origin = input.origin ?? 'AWS_KMS';
    if (keySpec !== 'SYMMETRIC_DEFAULT') {
      throw new UnsupportedOperationException(`KeySpec ${keySpec} is not supported by this server yet; only SYMMETRIC_DEFAULT is.`);
    }
    if (keyUsage !== 'ENCRYPT_DECRYPT') {
      throw new ValidationException(`KeyUsage ${keyUsage} is not compatible with KeySpec SYMMETRIC_DEFAULT`);
    }
    if (origin !== 'AWS_KMS' && origin !== 'AWS_CLOUDHSM' && origin !== 'EXTERNAL') throw new UnsupportedOperationException(`Origin ${origin} is not supported by this server yet.`);
    // AWS_CLOUDHSM keys live in a custom key store, and a custom key store holds only those.
    if (origin === 'AWS_CLOUDHSM' && input.customKeyStoreId === undefined) {
      throw new ValidationException('A KMS key with Origin AWS_CLOUDHSM must be created in a custom key store: specify CustomKeyStoreId.');
    }
    if (input.customKeyStoreId !== undefined && origin !== 'AWS_CLOUDHSM') {
      throw new ValidationException(`Origin ${origin} is not valid for a KMS key in an AWS CloudHSM key store; specify Origin AWS_CLOUDHSM.`);
    }
    const store = input.customKeyStoreId === undefined ? undefined : await storeInScope(svc, call, input.customKeyStoreId);
    if (store && store.connectionState !== 'CONNECTED') {
      throw new CustomKeyStoreInvalidStateException(`Custom key store ${store.customKeyStoreId} is not connected (its ConnectionState is ${store.connectionState}).`);
    }
    if (input.multiRegion) throw new UnsupportedOperationException('Multi-Region keys are not supported by this server yet.');
    const tags = input.tags ?? [];
    validateTags(tags);
    if (tags.length > MAX_TAGS_PER_KEY) throw new TagException('Too many tags');

    const keyId = randomUUID();
    const arn = keyArn(call.region, call.principal.accountId, keyId);
    const policy = input.policy ?? defaultKeyPolicy(call.principal.accountId);
    if (input.policy !== undefined) {
      await assertSodForKeyPolicy(svc, call.principal.accountId, arn, parsePolicy(policy, { requirePrincipal: true }));
      if (!input.bypassPolicyLockoutSafetyCheck) assertNoLockout(policy, call.principal, arn);
    }
    const now = svc.clock.now();
    const periodDays = (await svc.keys.getAccountSettings(call.principal.accountId)).defaultRotationPeriodDays ?? DEFAULT_ROTATION_PERIOD_DAYS;
    // Rotation is on unless the creator opts out: a key nobody remembers to rotate is the common failure.
    // Keys in custom key stores do not rotate (as in AWS).
    // Imported (EXTERNAL) keys rotate only on demand, by importing new material (as in AWS).
    const external = origin === 'EXTERNAL';
    const rotationOptOut = store !== undefined || external || tags.some((t) => t.tagKey === ROTATION_OPT_OUT_TAG.tagKey && t.tagValue === ROTATION_OPT_OUT_TAG.tagValue);
    const record: KeyRecord = {
      keyId,
      arn,
      accountId: call.principal.accountId,
      region: call.region,
      createdAt: now,
      description: input.description ?? '',
      keyUsage,
      keySpec,
      origin,
      ...(store ? { customKeyStoreId: store.customKeyStoreId } : {}),
      // An EXTERNAL key has no material until ImportKeyMaterial.
      state: external ? 'PendingImport' : 'Enabled',
      policy,
      tags,
      createdBy: call.principal.arn,
      currentVersion: 1,
      versions: [{ version: 1, createdAt: now }],
      rotation: rotationOptOut
        ? { enabled: false, periodDays, onDemandCount: 0 }
        : { enabled: true, periodDays, nextRotationAt: now + periodDays * DAY_MS, onDemandCount: 0 },
    };
    await svc.keys.storage.transaction(async (tx) => {
      if (store) {
        // Material is made in the store's HSM; a token failure fails the call, nothing is made in software.
        try {
          await svc.keystore.generate({ keyId, keyVersion: 1, hsm: store.cloudHsmClusterId }, tx);
        } catch (e) {
          if (!(e instanceof KeyUnavailableException)) throw e;
          throw new CustomKeyStoreInvalidStateException(`The HSM of custom key store ${store.customKeyStoreId} could not create the key material. Check the HSM and its connection.`);
        }
        await svc.customKeyStores.addKey(tx, store.customKeyStoreId, keyId);
      } else if (!external) {
        await svc.keystore.generate({ keyId, keyVersion: 1 }, tx);
      }
      await svc.keys.putKey(tx, record);
    });
    if (store) audit.detail('customKeyStoreId', store.customKeyStoreId);
    audit.key(arn, 1);
    audit.detail('owner', ownerOf(record));
    if (rotationOptOut && !external) audit.detail('rotationOptOut', true);
    return { keyMetadata: keyMetadata(record, store ? { cloudHsmClusterId: store.cloudHsmClusterId } : {}) };
  },
};
