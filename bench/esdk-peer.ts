/**
 * The peer in the backup benchmark: @aws-crypto/client-node (the AWS Encryption SDK for Node) encrypting
 * or decrypting one file to another through its KMS keyring pointed at Keyhold, as a user of that SDK
 * would: its streaming API in a stream pipeline. Same message shape as `keyhold backup encrypt` writes
 * (suite 0x0478, committing and unsigned; frames of KEYHOLD_BENCH_FRAME bytes, 1 MiB by default), so the
 * two implementations do the same work. Run as its own process by bench/backup.ts, which
 * times the whole process, start-up included, as it does for the Keyhold CLI and age.
 *
 *   node dist/bench/esdk-peer.js encrypt|decrypt IN OUT
 *   env: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_CA_BUNDLE, KEYHOLD_BENCH_KEY_ARN,
 *        KEYHOLD_BENCH_FRAME (optional)
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { KMS } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { AlgorithmSuiteIdentifier, buildClient, CommitmentPolicy, getClient, KmsKeyringNode } from '@aws-crypto/client-node';

async function main(): Promise<void> {
  const [mode, input, output] = process.argv.slice(2);
  const keyArn = process.env.KEYHOLD_BENCH_KEY_ARN;
  if ((mode !== 'encrypt' && mode !== 'decrypt') || !input || !output || !keyArn) {
    throw new Error('usage: esdk-peer encrypt|decrypt IN OUT (with KEYHOLD_BENCH_KEY_ARN and the AWS_* settings)');
  }
  const ca = readFileSync(process.env.AWS_CA_BUNDLE!);
  const clientProvider = getClient(KMS, {
    endpoint: process.env.AWS_ENDPOINT_URL!,
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca, keepAlive: true }) }),
  });
  const keyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider });
  const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const frameLength = Number(process.env.KEYHOLD_BENCH_FRAME ?? 1 << 20);
  const transform = mode === 'encrypt'
    ? esdk.encryptStream(keyring, { suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY, frameLength })
    : esdk.decryptUnsignedMessageStream(keyring);
  await pipeline(createReadStream(input, { highWaterMark: 1 << 20 }), transform, createWriteStream(output));
}

main().catch((e: unknown) => {
  process.stderr.write(`esdk-peer: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
