import { Agent } from 'node:https';
import { readFileSync } from 'node:fs';
import { IAM } from '@aws-sdk/client-iam';
import { STS } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Credentials, TestServer } from './server.js';

function handler(server: TestServer): NodeHttpHandler {
  const ca = server.caFile ? readFileSync(server.caFile) : undefined;
  return new NodeHttpHandler({ httpsAgent: new Agent({ ca, keepAlive: true }) });
}

/** An AWS SDK IAM client pointed at a test server. */
export function iamClient(server: TestServer, credentials: Credentials = server.credentials): IAM {
  return new IAM({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1, requestHandler: handler(server) });
}

/** An AWS SDK STS client pointed at a test server. */
export function stsClient(server: TestServer, credentials: Credentials = server.credentials): STS {
  return new STS({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1, requestHandler: handler(server) });
}

export const policy = (...Statement: object[]) => JSON.stringify({ Version: '2012-10-17', Statement });

/** Creates an IAM user with the managed policies attached (and an inline one), and returns an access key of it. */
export async function createUserWithKey(iam: IAM, name: string, attach: string[] = [], inline?: string): Promise<Credentials> {
  await iam.createUser({ UserName: name });
  for (const p of attach) await iam.attachUserPolicy({ UserName: name, PolicyArn: p });
  if (inline) await iam.putUserPolicy({ UserName: name, PolicyName: 'inline', PolicyDocument: inline });
  const { AccessKey: k } = await iam.createAccessKey({ UserName: name });
  return { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
}
