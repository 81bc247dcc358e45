// Firehose test helpers: an SDK client pointed at a Pinstream server (retries off, so every error
// reaches the test as sent), the smallest valid destination configurations, a bounded wait, and a
// listing of the objects a folder bucket holds.

import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { TEMP_PREFIX } from '../../src/firehose/objects/folder.js';

export const ACCOUNT = '000000000000';
export const ROLE = `arn:aws:iam::${ACCOUNT}:role/firehose-delivery`;

export function firehoseClient(server: { url: string; admin: { accessKeyId: string; secretAccessKey: string } }, credentials = server.admin): FirehoseClient {
  return new FirehoseClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
}

/**
 * Creates a role Firehose may assume (trust in firehose.amazonaws.com for this account) whose
 * policy allows writing to every bucket (the S3 actions AWS documents for a Firehose role) —
 * ROLE unless named — through the IAM API as a user would. Every delivery stream's S3 writes
 * are authorized as its role.
 */
export async function createDeliveryRole(
  server: { url: string; admin: { accessKeyId: string; secretAccessKey: string } },
  name = ROLE.slice(ROLE.lastIndexOf('/') + 1),
  resources: string[] = ['arn:aws:s3:::*'],
): Promise<string> {
  const iam = new IAMClient({ endpoint: server.url, region: 'us-east-1', credentials: server.admin, maxAttempts: 1 });
  try {
    // Idempotent: a server restarted on the same data directory already has the role.
    await iam.send(
      new CreateRoleCommand({
        RoleName: name,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'firehose.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } },
          ],
        }),
      }),
    ).catch((e) => {
      if (e.name !== 'EntityAlreadyExistsException') throw e;
    });
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: name,
        PolicyName: 'firehose-s3',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Action: ['s3:AbortMultipartUpload', 's3:GetBucketLocation', 's3:GetObject', 's3:ListBucket', 's3:ListBucketMultipartUploads', 's3:PutObject'],
              Resource: resources,
            },
          ],
        }),
      }),
    );
  } finally {
    iam.destroy();
  }
  return `arn:aws:iam::${ACCOUNT}:role/${name}`;
}

/** An ExtendedS3DestinationConfiguration writing to `bucket`, with any members overridden. */
export function s3Destination(bucket: string, extra: Record<string, unknown> = {}): any {
  return { RoleARN: ROLE, BucketARN: `arn:aws:s3:::${bucket}`, ...extra };
}

/** Polls `cond` every 10 ms until it holds; fails after `timeoutMs` naming what was awaited. */
export async function until<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Object keys under a folder bucket (relative, `/`-separated, sorted); [] when it does not exist. */
export async function folderKeys(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile() && !e.name.startsWith(TEMP_PREFIX))
      .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return entries.sort();
}

/** Every object of a folder bucket concatenated in key order. */
export async function folderContents(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const k of await folderKeys(dir)) parts.push(await readFile(join(dir, k), 'utf8'));
  return parts.join('');
}
