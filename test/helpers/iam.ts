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
