// Event-stream test setup shared by the event-stream suites: the IAM role Pinpoint's
// documentation describes (trust in pinpoint.amazonaws.com, put and describe on the stream),
// made through the IAM API as a user would.

import { CreateRoleCommand, PutRolePolicyCommand, type IAMClient } from '@aws-sdk/client-iam';

export interface RoleOptions {
  /** The destination ARN the permission policy names. */
  resource: string;
  /** The trusted service principal (default pinpoint.amazonaws.com). */
  trustService?: string;
  /** The allowed actions (default kinesis:PutRecords and kinesis:DescribeStream). */
  actions?: string[];
}

export async function createPinpointRole(iam: IAMClient, name: string, o: RoleOptions): Promise<void> {
  await iam.send(
    new CreateRoleCommand({
      RoleName: name,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: o.trustService ?? 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
    }),
  );
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: name,
      PolicyName: 'PinpointEventStreamPermissionsPolicy',
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: o.actions ?? ['kinesis:PutRecords', 'kinesis:DescribeStream'], Resource: [o.resource] }],
      }),
    }),
  );
}
