// Roles a service uses on a customer's behalf. Assuming one (what STS does for Pinpoint and
// Firehose in AWS): the role is named by its exact ARN, and its trust policy must let the service
// principal assume it with aws:SourceArn (the app, or the delivery stream) and aws:SourceAccount,
// checked when the role is saved and again on every use, so a role conditioned on app B never
// serves app A. Event-stream roles: checks that a role lets Pinpoint write a project's events to a
// destination (reference/pinpoint.md §4.1) and says what is missing in words a user can act on;
// and creates such a role ("Automatically create a role" in Pinpoint's console).

import type { Credentials } from './sigv4.js';
import { evaluate, type PolicyDocument } from './policy.js';
import type { IamStore, RoleRow, RoleSource } from './store.js';

export type { RoleSource } from './store.js';
export const PINPOINT_SERVICE_PRINCIPAL = 'pinpoint.amazonaws.com';
export const FIREHOSE_SERVICE_PRINCIPAL = 'firehose.amazonaws.com';
export const STREAM_ROLE_POLICY_NAME = 'PinpointEventStreamPermissionsPolicy';

/** Why `source.service` cannot assume `role` for `source`, or undefined when its trust policy allows it. */
export function trustProblem(store: IamStore, role: RoleRow, source: RoleSource): string | undefined {
  const trust = store.trustPolicy(role);
  const assume = (policy: PolicyDocument) =>
    evaluate([policy], {
      action: 'sts:AssumeRole',
      resource: store.roleArn(role),
      principal: { type: 'Service', id: source.service },
      context: { 'aws:SourceAccount': source.sourceAccount, 'aws:SourceArn': source.sourceArn },
    });
  if (assume(trust) === 'Allow') return undefined;
  // Would it allow without the Allow statements' conditions? Then the conditions are what to fix.
  const unconditioned = { ...trust, Statement: trust.Statement.map((st) => (st.Effect === 'Allow' ? { ...st, Condition: undefined } : st)) };
  return assume(unconditioned) === 'Allow'
    ? `the trust policy of role ${role.name} lets ${source.service} assume it (sts:AssumeRole) only under conditions that ` +
        `${source.sourceArn} does not meet; make aws:SourceAccount ${source.sourceAccount} and aws:SourceArn ${source.sourceArn} satisfy them`
    : `the trust policy of role ${role.name} does not let ${source.service} assume it (sts:AssumeRole) for ${source.sourceArn}; ` +
        `add a statement allowing sts:AssumeRole to Principal {"Service":"${source.service}"}`;
}

/** Why the role named by `roleArn` cannot be assumed for `source` (missing, or its trust), else undefined. */
export function assumeProblem(store: IamStore, roleArn: string, source: RoleSource): string | undefined {
  const role = store.roleByArn(roleArn);
  if (!role) return `role ${roleArn} does not exist in account ${store.accountId}`;
  return trustProblem(store, role, source);
}

/** A role that cannot be assumed; its message says why. */
export class AssumeRoleError extends Error {
  override name = 'AssumeRoleError';
}

/**
 * What STS AssumeRole is for a service here: checks the role and its trust policy for `source`,
 * then returns the session's credentials (AssumeRoleError when it cannot be assumed).
 */
export function assumeRole(store: IamStore, roleArn: string, source: RoleSource): Credentials {
  const problem = assumeProblem(store, roleArn, source);
  if (problem) throw new AssumeRoleError(`${source.service} cannot assume ${roleArn} for ${source.sourceArn}: ${problem}`);
  return store.roleSession(store.roleByArn(roleArn)!.name, source);
}

/**
 * Whether the role, assumed for `source`, may do `action` on `resource`: trust first, then the
 * role's identity policies. Returns why not, or undefined. For work a service does itself
 * (Firehose writing an S3 object), where no request is signed.
 */
export function roleMayNot(store: IamStore, roleArn: string, source: RoleSource, action: string, resource: string): string | undefined {
  const problem = assumeProblem(store, roleArn, source);
  if (problem) return problem;
  const role = store.roleByArn(roleArn)!;
  const decision = evaluate(store.policies('role', role.name), {
    action,
    resource,
    context: { 'aws:PrincipalArn': store.roleArn(role), 'aws:PrincipalAccount': store.accountId, 'aws:SourceArn': source.sourceArn, 'aws:SourceAccount': source.sourceAccount },
  });
  if (decision === 'Allow') return undefined;
  return decision === 'ExplicitDeny'
    ? `role ${role.name} is explicitly denied ${action} on ${resource}`
    : `no policy of role ${role.name} allows ${action} on ${resource}`;
}

/** The put and describe actions a destination needs, by ARN service. */
export function destinationActions(destinationArn: string): { put: string; describe: string } | undefined {
  // Names as Kinesis and Firehose allow them, so a path such as `stream/a/../b` is no destination.
  if (/^arn:aws[a-z-]*:kinesis:[^:]*:\d{12}:stream\/[a-zA-Z0-9_.-]{1,128}$/.test(destinationArn)) {
    return { put: 'kinesis:PutRecords', describe: 'kinesis:DescribeStream' };
  }
  if (/^arn:aws[a-z-]*:firehose:[^:]*:\d{12}:deliverystream\/[a-zA-Z0-9_.-]{1,64}$/.test(destinationArn)) {
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
  const trust = trustProblem(store, role, { service: PINPOINT_SERVICE_PRINCIPAL, sourceArn: appArn, sourceAccount: store.accountId });
  if (trust) missing.push(trust);
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
export async function createStreamRole(store: IamStore, region: string, appId: string, destinationArn: string): Promise<string> {
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
  if (role) await store.updateAssumeRolePolicy(name, trust);
  else role = await store.createRole(name, trust, { description: `Lets Pinstream stream events of ${appArn}` });
  await store.putPolicy(
    'role',
    role.name,
    STREAM_ROLE_POLICY_NAME,
    JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: [actions.put, actions.describe], Resource: [destinationArn] }] }),
  );
  return store.roleArn(role);
}
