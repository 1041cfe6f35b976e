import * as ops from '../../operations/index.js';
import { route, type Route } from './kms-routes.js';
import { int, list, str, struct, timestamp } from './schema.js';

/**
 * CloudTrail's JSON 1.1 operations Keyhold answers (botocore cloudtrail/2013-11-01): SigV4 with
 * service `cloudtrail`, X-Amz-Target `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Op>`.
 */
export const CLOUDTRAIL_ROUTES = {
  LookupEvents: route(
    struct({
      LookupAttributes: list(struct({ AttributeKey: str(), AttributeValue: str() }, ['AttributeKey', 'AttributeValue'])),
      StartTime: timestamp(),
      EndTime: timestamp(),
      EventCategory: str(),
      MaxResults: int(),
      NextToken: str(),
    }),
    struct({
      Events: list(struct({
        EventId: str(), EventName: str(), ReadOnly: str(), AccessKeyId: str(), EventTime: timestamp(), EventSource: str(),
        Username: str(), Resources: list(struct({ ResourceType: str(), ResourceName: str() }, ['ResourceType', 'ResourceName'])), CloudTrailEvent: str(),
      }, ['EventId', 'EventName', 'ReadOnly', 'EventTime', 'EventSource', 'Resources', 'CloudTrailEvent'])),
      NextToken: str(),
    }),
    ops.lookupEvents,
  ),
} satisfies Record<string, Route>;

/**
 * botocore (AWS CLI, boto3) sends the model's full targetPrefix; the JS SDK v3 sends the Smithy
 * service name alone (`CloudTrail_20131101.LookupEvents`). Both name the same operation.
 */
export const CLOUDTRAIL_TARGET_PREFIXES = ['com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.', 'CloudTrail_20131101.'] as const;
/** The SigV4 signing name of CloudTrail requests. */
export const CLOUDTRAIL_SIGNING_NAME = 'cloudtrail';
