// Event-stream roles: checks that a role lets Pinpoint write a project's events to a destination
// (reference/pinpoint.md §4.1) and says what is missing in words a user can act on; and creates
// such a role ("Automatically create a role" in Pinpoint's console).

import { evaluate, parsePolicy, type PolicyDocument } from './policy.js';
import type { IamStore } from './store.js';

export const PINPOINT_SERVICE_PRINCIPAL = 'pinpoint.amazonaws.com';
export const STREAM_ROLE_POLICY_NAME = 'PinpointEventStreamPermissionsPolicy';

/** The put and describe actions a destination needs, by ARN service. */
export function destinationActions(destinationArn: string): { put: string; describe: string } | undefined {
  if (/^arn:aws[a-z-]*:kinesis:[^:]*:\d{12}:stream\/.+$/.test(destinationArn)) {
    return { put: 'kinesis:PutRecords', describe: 'kinesis:DescribeStream' };
  }
  if (/^arn:aws[a-z-]*:firehose:[^:]*:\d{12}:deliverystream\/.+$/.test(destinationArn)) {
    return { put: 'firehose:PutRecordBatch', describe: 'firehose:DescribeDeliveryStream' };
  }
  return undefined;
}

/**
 * Returns what the role lacks to stream `appArn`'s events to `destinationArn` (empty when it is
 * fit): it must exist, trust pinpoint.amazonaws.com for this app and account, and allow the put
 * and describe actions on the destination. Each message names the role, the action and the ARN
 * concerned, and says what to add.
 */
export function checkStreamRole(store: IamStore, roleArn: string, appArn: string, destinationArn: string): string[] {
  const actions = destinationActions(destinationArn);
  if (!actions) {
    return [
      `DestinationStreamArn "${destinationArn}" is neither a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME) ` +
        `nor a Firehose delivery stream ARN (arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME)`,
    ];
  }
  const needs = `${actions.put} and ${actions.describe} on ${destinationArn}`;
  const m = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\x21-\x7e]*\/)?([\w+=,.@-]+)$/.exec(roleArn);
  if (!m) return [`RoleArn "${roleArn}" is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)`];
  if (m[1] !== store.accountId) {
    return [`Role ${roleArn} belongs to account ${m[1]}, not to this account (${store.accountId}); use a role of account ${store.accountId}`];
  }
  const role = store.getRole(m[2]);
  if (!role) {
    return [
      `Role ${m[2]} (${roleArn}) does not exist; create it with a trust policy for ${PINPOINT_SERVICE_PRINCIPAL} and a policy ` +
        `allowing ${needs}, or choose "Automatically create a role"`,
    ];
  }
  // IAM resolves a role ARN path and all: the right name under another path is another role.
  if (store.roleArn(role) !== roleArn) return [`Role ${role.name} has the ARN ${store.roleArn(role)}, not ${roleArn}; use that ARN`];

  const missing: string[] = [];
  const trust = parsePolicy(role.assume_role_policy, 'trust');
  const assume = (policy: PolicyDocument) =>
    evaluate([policy], {
      action: 'sts:AssumeRole',
      resource: store.roleArn(role),
      principal: { type: 'Service', id: PINPOINT_SERVICE_PRINCIPAL },
      context: { 'aws:SourceAccount': store.accountId, 'aws:SourceArn': appArn },
    });
  if (assume(trust) !== 'Allow') {
    // Would it allow without the Allow statements' conditions? Then the conditions are what to fix.
    const unconditioned = { ...trust, Statement: trust.Statement.map((st) => (st.Effect === 'Allow' ? { ...st, Condition: undefined } : st)) };
    missing.push(
      assume(unconditioned) === 'Allow'
        ? `the trust policy of role ${role.name} lets ${PINPOINT_SERVICE_PRINCIPAL} assume it (sts:AssumeRole) only under conditions that ` +
            `${appArn} does not meet; make aws:SourceAccount ${store.accountId} and aws:SourceArn ${appArn} satisfy them`
        : `the trust policy of role ${role.name} does not let ${PINPOINT_SERVICE_PRINCIPAL} assume it (sts:AssumeRole) for ${appArn}; ` +
            `add a statement allowing sts:AssumeRole to Principal {"Service":"${PINPOINT_SERVICE_PRINCIPAL}"}`,
    );
  }
  const policies = store.policies('role', role.name);
  for (const action of [actions.put, actions.describe]) {
    if (evaluate(policies, { action, resource: destinationArn }) !== 'Allow') {
      missing.push(
        `role ${role.name} does not allow ${action} on ${destinationArn}; ` +
          `add {"Effect":"Allow","Action":"${action}","Resource":"${destinationArn}"} to one of its inline policies`,
      );
    }
  }
  return missing;
}

/**
 * Creates a role fit for streaming `appId`'s events to the destination, or brings the existing
 * one up to date (trust and permissions both), so running it again repairs a role edited since.
 */
export function createStreamRole(store: IamStore, region: string, appId: string, destinationArn: string): string {
  const actions = destinationActions(destinationArn);
  if (!actions) throw new Error(`not a Kinesis stream or Firehose delivery stream ARN: ${destinationArn}`);
  const appArn = `arn:aws:mobiletargeting:${region}:${store.accountId}:apps/${appId}`;
  const name = `pinpoint-event-stream-${appId}`.slice(0, 64);
  const trust = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: PINPOINT_SERVICE_PRINCIPAL },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:SourceAccount': store.accountId }, ArnLike: { 'aws:SourceArn': appArn } },
      },
    ],
  });
  let role = store.getRole(name);
  if (role) store.updateAssumeRolePolicy(name, trust);
  else role = store.createRole(name, trust, { description: `Lets Pinstream stream events of ${appArn}` });
  store.putPolicy(
    'role',
    role.name,
    STREAM_ROLE_POLICY_NAME,
    JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: [actions.put, actions.describe], Resource: [destinationArn] }] }),
  );
  return store.roleArn(role);
}
