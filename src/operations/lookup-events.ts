import { createHash } from 'node:crypto';
import { toLookupEvent, type LookupQuery } from '../audit/index.js';
import {
  InvalidEventCategoryException, InvalidLookupAttributesException, InvalidMaxResultsException, InvalidNextTokenException,
  InvalidTimeRangeException,
} from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';

/** LookupEvents' attribute keys (botocore cloudtrail LookupAttributeKey). */
export const LOOKUP_ATTRIBUTE_KEYS = ['EventId', 'EventName', 'ReadOnly', 'Username', 'ResourceType', 'ResourceName', 'EventSource', 'AccessKeyId'] as const;
/** CloudTrail: "The default number of results returned is 50, with a maximum of 50 possible." */
const MAX_RESULTS = 50;
/** LookupAttributeValue: at most 2000 characters (CloudTrail's model). */
const MAX_ATTRIBUTE_VALUE = 2000;

type LookupEvent = ReturnType<typeof toLookupEvent>;

/** The page token: where the next page starts, bound to the query it belongs to. */
function queryHash(q: Omit<LookupQuery, 'beforeSeq' | 'limit'>): string {
  return createHash('sha256').update(JSON.stringify([q.accountId, q.region, q.attribute ?? null, q.startMs ?? null, q.endMs ?? null])).digest('base64url').slice(0, 16);
}

/**
 * CloudTrail's LookupEvents over the audit log: the caller's account and region, newest first,
 * at most one lookup attribute, StartTime/EndTime inclusive, MaxResults 1..50 (default 50),
 * NextToken valid only with the same parameters. Unlike CloudTrail, there is no 90-day horizon:
 * everything retention kept is searchable.
 */
export const lookupEvents: Operation<
  {
    lookupAttributes?: { attributeKey: string; attributeValue: string }[];
    startTime?: Date; endTime?: Date; eventCategory?: string; maxResults?: number; nextToken?: string;
  },
  { events: LookupEvent[]; nextToken?: string }
> = {
  name: 'LookupEvents',
  eventSource: 'cloudtrail.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'LookupEvents', audit);
    const attrs = input.lookupAttributes ?? [];
    if (attrs.length > 1) throw new InvalidLookupAttributesException('You can specify only one lookup attribute.');
    const attr = attrs[0];
    if (attr) {
      if (!(LOOKUP_ATTRIBUTE_KEYS as readonly string[]).includes(attr.attributeKey)) {
        throw new InvalidLookupAttributesException(`Invalid attribute key: ${attr.attributeKey}. Valid keys: ${LOOKUP_ATTRIBUTE_KEYS.join(', ')}.`);
      }
      if (attr.attributeValue.length < 1 || attr.attributeValue.length > MAX_ATTRIBUTE_VALUE) {
        throw new InvalidLookupAttributesException(`The attribute value must be 1 to ${MAX_ATTRIBUTE_VALUE} characters.`);
      }
      if (attr.attributeKey === 'ReadOnly' && attr.attributeValue !== 'true' && attr.attributeValue !== 'false') {
        throw new InvalidLookupAttributesException('The value of ReadOnly must be true or false.');
      }
    }
    if (input.eventCategory !== undefined) {
      // Only management events are recorded; there are no Insights events.
      if (input.eventCategory !== 'insight') throw new InvalidEventCategoryException(`Invalid event category: ${input.eventCategory}.`);
      return { events: [] };
    }
    if (input.startTime && input.endTime && input.startTime.getTime() > input.endTime.getTime()) {
      throw new InvalidTimeRangeException('The start time is after the end time.');
    }
    const limit = input.maxResults ?? MAX_RESULTS;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RESULTS) throw new InvalidMaxResultsException(`MaxResults must be 1 to ${MAX_RESULTS}.`);
    const base = {
      accountId: call.accountId,
      region: call.region,
      ...(attr ? { attribute: { key: attr.attributeKey, value: attr.attributeValue } } : {}),
      ...(input.startTime ? { startMs: input.startTime.getTime() } : {}),
      ...(input.endTime ? { endMs: input.endTime.getTime() } : {}),
    };
    const hash = queryHash(base);
    let beforeSeq: number | undefined;
    if (input.nextToken !== undefined) {
      const m = /^([0-9]+)\.([A-Za-z0-9_-]{16})$/.exec(input.nextToken);
      if (!m || m[2] !== hash) throw new InvalidNextTokenException('The NextToken is not valid, or was issued for other parameters.');
      beforeSeq = Number(m[1]);
    }
    const rows = await svc.audit.lookup({ ...base, ...(beforeSeq !== undefined ? { beforeSeq } : {}), limit: limit + 1 });
    const page = rows.slice(0, limit);
    return {
      events: page.map((r) => toLookupEvent(r.event)),
      ...(rows.length > limit ? { nextToken: `${page[page.length - 1]!.seq}.${hash}` } : {}),
    };
  },
};
