// IAM managed policies and groups through @aws-sdk/client-iam against a real server: the actions'
// shapes and AWS's errors (duplicate names, the five-version limit, deleting a default version,
// a policy still attached or with versions, attachment quotas, users and groups still in use),
// and evaluation: a user's permissions come from its inline and attached policies and from its
// groups' inline and attached ones; a role's from its inline and attached ones; explicit deny wins.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as IAM from '@aws-sdk/client-iam';
import { KinesisClient, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { startTestServer, type TestServer } from './helpers/server.js';
import { rejection } from './helpers/rejection.js';
import { MAX_ATTACHED_POLICIES, MAX_POLICY_VERSIONS } from '../src/iam/store.js';
import { MAX_GROUPS_PER_USER, MAX_MANAGED_POLICY_BYTES } from '../src/iam/api.js';

const ACCOUNT = '000000000000';
type Creds = { accessKeyId: string; secretAccessKey: string };
const doc = (...Statement: object[]) => JSON.stringify({ Version: '2012-10-17', Statement });
const LIST_STREAMS = doc({ Effect: 'Allow', Action: 'kinesis:ListStreams', Resource: '*' });
const policyArn = (name: string, path = '/') => `arn:aws:iam::${ACCOUNT}:policy${path}${name}`;

let t: TestServer;
let iam: IAM.IAMClient;
const clients: Array<{ destroy(): void }> = [];
const track = <C extends { destroy(): void }>(c: C) => (clients.push(c), c);
const kinesisAs = (credentials: Creds) => track(new KinesisClient({ endpoint: t.server.url, region: 'us-east-1', credentials, maxAttempts: 1 }));

before(async () => {
  t = await startTestServer();
  iam = track(new IAM.IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 }));
});
after(async () => {
  for (const c of clients) c.destroy();
  await t.close();
});

async function user(name: string): Promise<Creds> {
  await iam.send(new IAM.CreateUserCommand({ UserName: name }));
  const k = (await iam.send(new IAM.CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
}
const policy = async (name: string, document = LIST_STREAMS, path?: string) =>
  (await iam.send(new IAM.CreatePolicyCommand({ PolicyName: name, PolicyDocument: document, Path: path, Description: `about ${name}` }))).Policy!;
const canListStreams = async (c: Creds) => {
  try {
    await kinesisAs(c).send(new ListStreamsCommand({}));
    return true;
  } catch (e) {
    assert.equal((e as Error).name, 'AccessDeniedException');
    return false;
  }
};

describe('managed policies', () => {
  test('CreatePolicy, GetPolicy, ListPolicies (Local; no AWS-managed ones), duplicate names', async () => {
    const p = await policy('reader', LIST_STREAMS, '/team/');
    assert.equal(p.Arn, policyArn('reader', '/team/'));
    assert.equal(p.DefaultVersionId, 'v1');
    assert.equal(p.AttachmentCount, 0);
    assert.equal(p.IsAttachable, true);
    assert.match(p.PolicyId!, /^ANPA[A-Z0-9]{17}$/);
    const got = (await iam.send(new IAM.GetPolicyCommand({ PolicyArn: p.Arn }))).Policy!;
    assert.equal(got.Description, 'about reader');
    assert.deepEqual((await iam.send(new IAM.ListPoliciesCommand({ Scope: 'Local' }))).Policies!.map((x) => x.PolicyName), ['reader']);
    assert.deepEqual((await iam.send(new IAM.ListPoliciesCommand({ Scope: 'AWS' }))).Policies ?? [], []);
    assert.deepEqual((await iam.send(new IAM.ListPoliciesCommand({ PathPrefix: '/other/' }))).Policies ?? [], []);
    for (const dup of ['reader', 'READER']) {
      const e = await rejection(() => policy(dup));
      assert.equal(e.name, 'EntityAlreadyExistsException');
      assert.equal(e.message, `A policy called ${dup} already exists. Duplicate names are not allowed.`);
    }
    const missing = await rejection(() => iam.send(new IAM.GetPolicyCommand({ PolicyArn: policyArn('nope') })));
    assert.equal(missing.name, 'NoSuchEntityException');
    assert.equal(missing.message, `Policy ${policyArn('nope')} was not found.`);
    assert.equal((await rejection(() => policy('bad', '{"Statement":[]'))).name, 'MalformedPolicyDocumentException');
    const big = doc({ Effect: 'Allow', Action: 'kinesis:ListStreams', Resource: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${'x'.repeat(MAX_MANAGED_POLICY_BYTES)}` });
    assert.equal((await rejection(() => policy('big', big))).name, 'LimitExceededException');
  });

  test(`versions: at most ${MAX_POLICY_VERSIONS}, SetAsDefault, the default cannot be deleted, newest listed first`, async () => {
    const p = await policy('versioned');
    for (let v = 2; v <= MAX_POLICY_VERSIONS; v++) {
      const out = (await iam.send(new IAM.CreatePolicyVersionCommand({ PolicyArn: p.Arn, PolicyDocument: doc({ Effect: 'Allow', Action: `kinesis:Describe${v}`, Resource: '*' }), SetAsDefault: v === 3 }))).PolicyVersion!;
      assert.equal(out.VersionId, `v${v}`);
      assert.equal(out.IsDefaultVersion, v === 3);
    }
    const sixth = await rejection(() => iam.send(new IAM.CreatePolicyVersionCommand({ PolicyArn: p.Arn, PolicyDocument: LIST_STREAMS })));
    assert.equal(sixth.name, 'LimitExceededException');
    assert.match(sixth.message, /A managed policy can have up to 5 versions/);
    const list = (await iam.send(new IAM.ListPolicyVersionsCommand({ PolicyArn: p.Arn }))).Versions!;
    assert.deepEqual(list.map((v) => [v.VersionId, v.IsDefaultVersion]), [['v5', false], ['v4', false], ['v3', true], ['v2', false], ['v1', false]]);
    const v3 = (await iam.send(new IAM.GetPolicyVersionCommand({ PolicyArn: p.Arn, VersionId: 'v3' }))).PolicyVersion!;
    assert.deepEqual(JSON.parse(decodeURIComponent(v3.Document!)).Statement[0].Action, 'kinesis:Describe3');
    const delDefault = await rejection(() => iam.send(new IAM.DeletePolicyVersionCommand({ PolicyArn: p.Arn, VersionId: 'v3' })));
    assert.equal(delDefault.name, 'DeleteConflictException');
    assert.equal(delDefault.message, 'Cannot delete the default version of a policy.');
    await iam.send(new IAM.DeletePolicyVersionCommand({ PolicyArn: p.Arn, VersionId: 'v5' }));
    // Numbers are not reused.
    assert.equal((await iam.send(new IAM.CreatePolicyVersionCommand({ PolicyArn: p.Arn, PolicyDocument: LIST_STREAMS }))).PolicyVersion!.VersionId, 'v6');
    await iam.send(new IAM.SetDefaultPolicyVersionCommand({ PolicyArn: p.Arn, VersionId: 'v6' }));
    assert.equal((await iam.send(new IAM.GetPolicyCommand({ PolicyArn: p.Arn }))).Policy!.DefaultVersionId, 'v6');
    const gone = await rejection(() => iam.send(new IAM.GetPolicyVersionCommand({ PolicyArn: p.Arn, VersionId: 'v5' })));
    assert.equal(gone.name, 'NoSuchEntityException');
    assert.equal(gone.message, `Policy ${p.Arn} version v5 does not exist or is not attachable.`);
    assert.equal((await rejection(() => iam.send(new IAM.GetPolicyVersionCommand({ PolicyArn: p.Arn, VersionId: 'x1' })))).name, 'ValidationError');
    const withVersions = await rejection(() => iam.send(new IAM.DeletePolicyCommand({ PolicyArn: p.Arn })));
    assert.equal(withVersions.name, 'DeleteConflictException');
    assert.match(withVersions.message, /^This policy has more than one version/);
    for (const v of ['v1', 'v2', 'v3', 'v4']) await iam.send(new IAM.DeletePolicyVersionCommand({ PolicyArn: p.Arn, VersionId: v }));
    await iam.send(new IAM.DeletePolicyCommand({ PolicyArn: p.Arn }));
  });

  test(`attachments: counts, listings, ${MAX_ATTACHED_POLICIES} per user and role, DeleteConflict while attached`, async () => {
    await user('attached-user');
    await iam.send(new IAM.CreateRoleCommand({ RoleName: 'attached-role', AssumeRolePolicyDocument: doc({ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' }) }));
    const arns: string[] = [];
    for (let i = 0; i <= MAX_ATTACHED_POLICIES; i++) arns.push((await policy(`quota-${String(i).padStart(2, '0')}`)).Arn!);
    for (const a of arns.slice(0, MAX_ATTACHED_POLICIES)) {
      await iam.send(new IAM.AttachUserPolicyCommand({ UserName: 'attached-user', PolicyArn: a }));
      await iam.send(new IAM.AttachRolePolicyCommand({ RoleName: 'attached-role', PolicyArn: a }));
    }
    // Attaching again is no new attachment.
    await iam.send(new IAM.AttachUserPolicyCommand({ UserName: 'attached-user', PolicyArn: arns[0] }));
    const over = await rejection(() => iam.send(new IAM.AttachUserPolicyCommand({ UserName: 'attached-user', PolicyArn: arns[MAX_ATTACHED_POLICIES] })));
    assert.equal(over.name, 'LimitExceededException');
    assert.equal(over.message, `Cannot exceed quota for PoliciesPerUser: ${MAX_ATTACHED_POLICIES}`);
    assert.equal((await rejection(() => iam.send(new IAM.AttachRolePolicyCommand({ RoleName: 'attached-role', PolicyArn: arns[MAX_ATTACHED_POLICIES] })))).message, `Cannot exceed quota for PoliciesPerRole: ${MAX_ATTACHED_POLICIES}`);
    assert.equal((await iam.send(new IAM.GetPolicyCommand({ PolicyArn: arns[0] }))).Policy!.AttachmentCount, 2);
    const listed = (await iam.send(new IAM.ListAttachedUserPoliciesCommand({ UserName: 'attached-user', MaxItems: 4 })));
    assert.deepEqual(listed.AttachedPolicies!.map((p) => p.PolicyName), ['quota-00', 'quota-01', 'quota-02', 'quota-03']);
    assert.equal(listed.IsTruncated, true);
    assert.equal((await iam.send(new IAM.ListAttachedRolePoliciesCommand({ RoleName: 'attached-role' }))).AttachedPolicies!.length, MAX_ATTACHED_POLICIES);
    const ents = await iam.send(new IAM.ListEntitiesForPolicyCommand({ PolicyArn: arns[0] }));
    assert.deepEqual(ents.PolicyUsers!.map((u) => u.UserName), ['attached-user']);
    assert.deepEqual(ents.PolicyRoles!.map((r) => r.RoleName), ['attached-role']);
    assert.deepEqual(ents.PolicyGroups ?? [], []);

    const notThere = await rejection(() => iam.send(new IAM.AttachUserPolicyCommand({ UserName: 'attached-user', PolicyArn: policyArn('nope') })));
    assert.equal(notThere.message, `Policy ${policyArn('nope')} does not exist or is not attachable.`);
    const attachedDelete = await rejection(() => iam.send(new IAM.DeletePolicyCommand({ PolicyArn: arns[0] })));
    assert.equal(attachedDelete.name, 'DeleteConflictException');
    assert.equal(attachedDelete.message, 'Cannot delete a policy attached to entities.');
    await iam.send(new IAM.DeleteAccessKeyCommand({ UserName: 'attached-user', AccessKeyId: (await iam.send(new IAM.ListAccessKeysCommand({ UserName: 'attached-user' }))).AccessKeyMetadata![0].AccessKeyId }));
    for (const del of [() => iam.send(new IAM.DeleteUserCommand({ UserName: 'attached-user' })), () => iam.send(new IAM.DeleteRoleCommand({ RoleName: 'attached-role' }))]) {
      const e = await rejection(del);
      assert.equal(e.name, 'DeleteConflictException');
      assert.equal(e.message, 'Cannot delete entity, must detach all policies first.');
    }
    for (const a of arns.slice(0, MAX_ATTACHED_POLICIES)) {
      await iam.send(new IAM.DetachUserPolicyCommand({ UserName: 'attached-user', PolicyArn: a }));
      await iam.send(new IAM.DetachRolePolicyCommand({ RoleName: 'attached-role', PolicyArn: a }));
    }
    const detachAgain = await rejection(() => iam.send(new IAM.DetachUserPolicyCommand({ UserName: 'attached-user', PolicyArn: arns[0] })));
    assert.equal(detachAgain.name, 'NoSuchEntityException');
    assert.equal(detachAgain.message, `Policy ${arns[0]} was not found.`);
    await iam.send(new IAM.DeleteUserCommand({ UserName: 'attached-user' }));
    await iam.send(new IAM.DeleteRoleCommand({ RoleName: 'attached-role' }));
    await iam.send(new IAM.DeletePolicyCommand({ PolicyArn: arns[0] }));
  });
});

describe('groups', () => {
  test('CreateGroup, GetGroup with users, ListGroups, ListGroupsForUser, group inline policies, DeleteGroup conflicts', async () => {
    const g = (await iam.send(new IAM.CreateGroupCommand({ GroupName: 'devs', Path: '/eng/' }))).Group!;
    assert.equal(g.Arn, `arn:aws:iam::${ACCOUNT}:group/eng/devs`);
    assert.match(g.GroupId!, /^AGPA/);
    assert.equal((await rejection(() => iam.send(new IAM.CreateGroupCommand({ GroupName: 'DEVS' })))).name, 'EntityAlreadyExistsException');
    await user('dev-1');
    await iam.send(new IAM.AddUserToGroupCommand({ GroupName: 'devs', UserName: 'dev-1' }));
    const got = await iam.send(new IAM.GetGroupCommand({ GroupName: 'devs' }));
    assert.deepEqual(got.Users!.map((u) => u.UserName), ['dev-1']);
    assert.deepEqual((await iam.send(new IAM.ListGroupsCommand({}))).Groups!.map((x) => x.GroupName), ['devs']);
    assert.deepEqual((await iam.send(new IAM.ListGroupsForUserCommand({ UserName: 'dev-1' }))).Groups!.map((x) => x.GroupName), ['devs']);
    await iam.send(new IAM.PutGroupPolicyCommand({ GroupName: 'devs', PolicyName: 'inline', PolicyDocument: LIST_STREAMS }));
    assert.deepEqual((await iam.send(new IAM.ListGroupPoliciesCommand({ GroupName: 'devs' }))).PolicyNames, ['inline']);
    assert.deepEqual(JSON.parse(decodeURIComponent((await iam.send(new IAM.GetGroupPolicyCommand({ GroupName: 'devs', PolicyName: 'inline' }))).PolicyDocument!)), JSON.parse(LIST_STREAMS));

    const e1 = await rejection(() => iam.send(new IAM.DeleteGroupCommand({ GroupName: 'devs' })));
    assert.equal(e1.message, 'Cannot delete entity, must remove users from group first.');
    const userDel = await rejection(() => iam.send(new IAM.DeleteUserCommand({ UserName: 'dev-1' })));
    assert.equal(userDel.name, 'DeleteConflictException');
    await iam.send(new IAM.RemoveUserFromGroupCommand({ GroupName: 'devs', UserName: 'dev-1' }));
    assert.equal((await rejection(() => iam.send(new IAM.RemoveUserFromGroupCommand({ GroupName: 'devs', UserName: 'dev-1' })))).name, 'NoSuchEntityException');
    const e2 = await rejection(() => iam.send(new IAM.DeleteGroupCommand({ GroupName: 'devs' })));
    assert.equal(e2.message, 'Cannot delete entity, must delete policies first.');
    await iam.send(new IAM.DeleteGroupPolicyCommand({ GroupName: 'devs', PolicyName: 'inline' }));
    const p = await policy('group-attached');
    await iam.send(new IAM.AttachGroupPolicyCommand({ GroupName: 'devs', PolicyArn: p.Arn }));
    assert.deepEqual((await iam.send(new IAM.ListAttachedGroupPoliciesCommand({ GroupName: 'devs' }))).AttachedPolicies!.map((x) => x.PolicyArn), [p.Arn]);
    assert.equal((await rejection(() => iam.send(new IAM.DeleteGroupCommand({ GroupName: 'devs' })))).message, 'Cannot delete entity, must detach all policies first.');
    await iam.send(new IAM.DetachGroupPolicyCommand({ GroupName: 'devs', PolicyArn: p.Arn }));
    await iam.send(new IAM.DeleteGroupCommand({ GroupName: 'devs' }));
    assert.equal((await rejection(() => iam.send(new IAM.GetGroupCommand({ GroupName: 'devs' })))).message, 'The group with name devs cannot be found.');
  });

  test(`a user belongs to at most ${MAX_GROUPS_PER_USER} groups`, async () => {
    await user('joiner');
    for (let i = 0; i <= MAX_GROUPS_PER_USER; i++) await iam.send(new IAM.CreateGroupCommand({ GroupName: `many-${i}` }));
    for (let i = 0; i < MAX_GROUPS_PER_USER; i++) await iam.send(new IAM.AddUserToGroupCommand({ GroupName: `many-${i}`, UserName: 'joiner' }));
    const e = await rejection(() => iam.send(new IAM.AddUserToGroupCommand({ GroupName: `many-${MAX_GROUPS_PER_USER}`, UserName: 'joiner' })));
    assert.equal(e.name, 'LimitExceededException');
  });
});

describe('evaluation', () => {
  test("a user whose only permission is a group's attached managed policy can call Kinesis; detaching removes it", async () => {
    const c = await user('via-group');
    await iam.send(new IAM.CreateGroupCommand({ GroupName: 'readers' }));
    await iam.send(new IAM.AddUserToGroupCommand({ GroupName: 'readers', UserName: 'via-group' }));
    const p = await policy('readers-policy');
    assert.equal(await canListStreams(c), false);
    await iam.send(new IAM.AttachGroupPolicyCommand({ GroupName: 'readers', PolicyArn: p.Arn }));
    assert.equal(await canListStreams(c), true);
    await iam.send(new IAM.DetachGroupPolicyCommand({ GroupName: 'readers', PolicyArn: p.Arn }));
    assert.equal(await canListStreams(c), false);
    // Group inline policies count too, and leaving the group takes them away.
    await iam.send(new IAM.PutGroupPolicyCommand({ GroupName: 'readers', PolicyName: 'inline', PolicyDocument: LIST_STREAMS }));
    assert.equal(await canListStreams(c), true);
    await iam.send(new IAM.RemoveUserFromGroupCommand({ GroupName: 'readers', UserName: 'via-group' }));
    assert.equal(await canListStreams(c), false);
  });

  test('the default version is what applies, at once; explicit deny in any attached policy wins', async () => {
    const c = await user('versions-user');
    const p = await policy('switchable', doc({ Effect: 'Allow', Action: 'kinesis:DescribeStream', Resource: '*' }));
    await iam.send(new IAM.AttachUserPolicyCommand({ UserName: 'versions-user', PolicyArn: p.Arn }));
    assert.equal(await canListStreams(c), false);
    await iam.send(new IAM.CreatePolicyVersionCommand({ PolicyArn: p.Arn, PolicyDocument: LIST_STREAMS, SetAsDefault: true }));
    assert.equal(await canListStreams(c), true);
    await iam.send(new IAM.SetDefaultPolicyVersionCommand({ PolicyArn: p.Arn, VersionId: 'v1' }));
    assert.equal(await canListStreams(c), false);
    await iam.send(new IAM.SetDefaultPolicyVersionCommand({ PolicyArn: p.Arn, VersionId: 'v2' }));
    const deny = await policy('deny-list', doc({ Effect: 'Deny', Action: 'kinesis:ListStreams', Resource: '*' }));
    await iam.send(new IAM.CreateGroupCommand({ GroupName: 'denied' }));
    await iam.send(new IAM.AttachGroupPolicyCommand({ GroupName: 'denied', PolicyArn: deny.Arn }));
    await iam.send(new IAM.AddUserToGroupCommand({ GroupName: 'denied', UserName: 'versions-user' }));
    const e = await rejection(() => kinesisAs(c).send(new ListStreamsCommand({})));
    assert.match(e.message, /explicit deny/);
  });

  test("a role's attached managed policy applies to its sessions", async () => {
    await iam.send(new IAM.CreateRoleCommand({ RoleName: 'attached-only', AssumeRolePolicyDocument: doc({ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' }) }));
    const p = await policy('role-reader');
    const sts = track(new STSClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 }));
    const session = async () => {
      const c = (await sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${ACCOUNT}:role/attached-only`, RoleSessionName: 'reader' }))).Credentials!;
      return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
    };
    const c = await session();
    assert.equal(await canListStreams(c), false);
    await iam.send(new IAM.AttachRolePolicyCommand({ RoleName: 'attached-only', PolicyArn: p.Arn }));
    assert.equal(await canListStreams(c), true);
  });
});
