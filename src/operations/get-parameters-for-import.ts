import { IMPORT_WRAPPING_ALGORITHMS, IMPORT_WRAPPING_KEY_BITS, type ImportWrappingAlgorithm, type ImportWrappingKeySpec } from '../crypto/index.js';
import { UnsupportedOperationException } from '../errors/index.js';
import { authorizeKey } from './common.js';
import type { Operation } from './context.js';
import { assertExternal } from './import-common.js';

export interface GetParametersForImportInput {
  keyId: string;
  wrappingAlgorithm: string;
  wrappingKeySpec: string;
}

export interface GetParametersForImportOutput {
  keyId: string;
  importToken: Buffer;
  publicKey: Buffer;
  parametersValidTo: Date;
}

/**
 * A fresh RSA wrapping key pair and import token for one EXTERNAL key: valid 24 hours, bound to
 * the key, single use. The private key is sealed in the barrier and never leaves the server.
 */
export const getParametersForImport: Operation<GetParametersForImportInput, GetParametersForImportOutput> = {
  name: 'GetParametersForImport',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'GetParametersForImport', audit);
    assertExternal(key, 'GetParametersForImport');
    if (!(input.wrappingAlgorithm in IMPORT_WRAPPING_ALGORITHMS)) {
      // RSAES_PKCS1_V1_5 is refused on purpose (it is the padding-oracle scheme); SM2PKE is China-Regions only.
      throw new UnsupportedOperationException(`WrappingAlgorithm ${input.wrappingAlgorithm} is not supported by this server; use RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1.`);
    }
    if (!(input.wrappingKeySpec in IMPORT_WRAPPING_KEY_BITS)) {
      throw new UnsupportedOperationException(`WrappingKeySpec ${input.wrappingKeySpec} is not supported by this server; use RSA_2048, RSA_3072 or RSA_4096.`);
    }
    const issued = await svc.importParameters.issue(
      key.keyId, input.wrappingAlgorithm as ImportWrappingAlgorithm, input.wrappingKeySpec as ImportWrappingKeySpec, svc.clock.now(),
    );
    audit.detail('wrappingAlgorithm', input.wrappingAlgorithm);
    audit.detail('wrappingKeySpec', input.wrappingKeySpec);
    audit.detail('parametersValidTo', new Date(issued.parametersValidTo).toISOString());
    return { keyId: key.arn, importToken: issued.importToken, publicKey: issued.publicKey, parametersValidTo: new Date(issued.parametersValidTo) };
  },
};
