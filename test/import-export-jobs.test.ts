// Endpoint import and export jobs (issue 15 item 1) against a real server, through the official
// Pinpoint SDK and the AWS CLI, with buckets as local folders and on s3rver: JSON and CSV as
// Pinpoint defined them, gzip, malformed lines failing alone with their line numbers, the
// export → import round trip (endpoints equal field by field), a stop mid-job resuming with exact
// counts, the role's rights (trust, s3:ListBucket/GetObject/PutObject, iam:PassRole), what
// Pinstream refuses for want of segments, and each limit of src/pinpoint/jobs/limits.ts.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import * as PP from '@aws-sdk/client-pinpoint';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { GetObjectCommand, ListObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/firehose.js';
import { aws, awsOk, skipUnlessAws } from './helpers/awscli.js';
import { createBucket, s3rverClient, startS3rver, type S3rverHandle } from './helpers/s3rver.js';
import { browserUnavailable, launchBrowser, screenshot } from './helpers/browser.js';
import { MAX_FAILURE_CHARS, MAX_FAILURE_SAMPLES, MAX_IMPORT_LINE_BYTES, MAX_IMPORT_PIECES, EXPORT_PIECE_MAX_BYTES } from '../src/pinpoint/jobs/limits.js';
import { splitCsv } from '../src/pinpoint/jobs/formats.js';

const ACCOUNT = '000000000000';
const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const PINPOINT_TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } }],
});

async function createRole(t: TestServer, name: string, actions: string[], trust = PINPOINT_TRUST): Promise<string> {
  const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  try {
    await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: trust })).catch((e) => {
      if (e.name !== 'EntityAlreadyExistsException') throw e;
    });
    if (actions.length > 0) {
      await iam.send(
        new PutRolePolicyCommand({
          RoleName: name,
          PolicyName: 's3',
          PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: ['arn:aws:s3:::*'] }] }),
        }),
      );
    }
  } finally {
    iam.destroy();
  }
  return roleArn(name);
}

const newApp = async (t: TestServer, name: string) => (await t.pinpoint.send(new PP.CreateAppCommand({ CreateApplicationRequest: { Name: name } }))).ApplicationResponse!.Id!;

async function importJob(t: TestServer, app: string, req: Partial<PP.ImportJobRequest>): Promise<string> {
  const r = await t.pinpoint.send(new PP.CreateImportJobCommand({ ApplicationId: app, ImportJobRequest: { Format: 'JSON', RoleArn: roleArn('jobs'), S3Url: '', ...req } as PP.ImportJobRequest }));
  assert.equal(r.ImportJobResponse!.JobStatus, 'CREATED');
  return r.ImportJobResponse!.Id!;
}

async function finished(t: TestServer, app: string, id: string, type: 'import' | 'export' = 'import'): Promise<PP.ImportJobResponse> {
  return until(async () => {
    const j =
      type === 'import'
        ? (await t.pinpoint.send(new PP.GetImportJobCommand({ ApplicationId: app, JobId: id }))).ImportJobResponse!
        : (await t.pinpoint.send(new PP.GetExportJobCommand({ ApplicationId: app, JobId: id }))).ExportJobResponse!;
    return j.JobStatus === "COMPLETED" || j.JobStatus === "FAILED" ? (j as PP.ImportJobResponse) : undefined;
  }, `${type} job ${id} to finish`, 60_000);
}

/** Every endpoint of an app, straight from the store (the API has no "list endpoints"). */
function storedEndpoints(dataDir: string, app: string): any[] {
  const db = new Database(join(dataDir, 'pinstream.db'), { readonly: true });
  try {
    return (db.prepare('SELECT data FROM endpoints WHERE app_id = ? ORDER BY id').all(app) as Array<{ data: string }>).map((r) => JSON.parse(r.data));
  } finally {
    db.close();
  }
}

const endpointLine = (i: number) =>
  JSON.stringify({
    Id: `ep-${i}`,
    ChannelType: i % 2 ? 'EMAIL' : 'SMS',
    Address: i % 2 ? `user${i}@example.com` : `+1206555${String(i).padStart(4, '0')}`,
    Location: { Country: 'US', City: 'Seattle', Latitude: 47.6, Longitude: -122.3 },
    Demographic: { Platform: 'iOS', Make: 'Apple', Timezone: 'America/Los_Angeles' },
    Attributes: { interests: ['music', `n${i % 7}`] },
    Metrics: { score: i },
    User: { UserId: `user-${i}`, UserAttributes: { FirstName: [`F${i}`] } },
    OptOut: 'NONE',
  });

let t: TestServer;
const bucketDir = (bucket: string) => join(t.dataDir, 'buckets', bucket);
async function put(bucket: string, key: string, body: string | Buffer): Promise<void> {
  const file = join(bucketDir(bucket), key);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, body);
}

describe('import and export jobs', () => {
  before(async () => {
    t = await startTestServer();
    await createRole(t, 'jobs', ['s3:GetObject', 's3:ListBucket', 's3:PutObject']);
  });
  after(() => t.close());

  test('JSON import from a folder bucket: every object under the prefix, gzip or not, malformed lines fail alone with their line numbers', async () => {
    const app = await newApp(t, 'json-import');
    await put('moving', 'in/a.json', [endpointLine(1), endpointLine(2), '{"Id":"broken", ', endpointLine(3), ''].join('\n'));
    await put('moving', 'in/sub/b.json.gz', gzipSync([endpointLine(4), '[1,2]', JSON.stringify({ Id: 'bad-date', EffectiveDate: 'yesterday' }), endpointLine(5)].join('\r\n')));
    await put('moving', 'in/c.csv', 'ChannelType,Address\nSMS,+12065550100\n'); // another format: left out
    await put('moving', 'elsewhere.json', endpointLine(99));
    const id = await importJob(t, app, { S3Url: 's3://moving/in/' });
    const j = await finished(t, app, id);
    assert.equal(j.JobStatus, 'COMPLETED');
    assert.equal(j.Type, 'IMPORT');
    assert.deepEqual([j.TotalPieces, j.CompletedPieces, j.FailedPieces], [2, 2, 0]);
    assert.equal(j.TotalProcessed, 8);
    assert.equal(j.TotalFailures, 3);
    assert.deepEqual(j.Definition, { S3Url: 's3://moving/in/', RoleArn: roleArn('jobs'), Format: 'JSON', RegisterEndpoints: true, DefineSegment: false });
    const f = j.Failures!.join('\n');
    assert.match(f, /s3:\/\/moving\/in\/a\.json line 3: not valid JSON/);
    assert.match(f, /s3:\/\/moving\/in\/sub\/b\.json\.gz line 2: a JSON line must be one endpoint object/);
    assert.match(f, /b\.json\.gz line 3: .*EffectiveDate "yesterday" is not an ISO 8601 date-time/);
    const stored = storedEndpoints(t.dataDir, app);
    assert.deepEqual(stored.map((e) => e.Id).sort(), ['ep-1', 'ep-2', 'ep-3', 'ep-4', 'ep-5']);
    const e = (await t.pinpoint.send(new PP.GetEndpointCommand({ ApplicationId: app, EndpointId: 'ep-3' }))).EndpointResponse!;
    assert.deepEqual(e.Attributes, { interests: ['music', 'n3'] });
    assert.equal(e.User!.UserAttributes!.FirstName![0], 'F3');
    assert.equal(e.Location!.Latitude, 47.6);
    const listed = (await t.pinpoint.send(new PP.GetImportJobsCommand({ ApplicationId: app }))).ImportJobsResponse!;
    assert.deepEqual(listed.Item!.map((x) => x.Id), [id]);
  });

  test('CSV import: dotted header names, repeated headers for more values, quoting; a line without Id gets the same id on every run', async () => {
    const app = await newApp(t, 'csv-import');
    await put(
      'moving',
      'csv/users.csv',
      [
        'ChannelType,Address,Location.Country,Demographic.Platform,User.UserId,Attributes.interests,Attributes.interests,Metrics.score,User.UserAttributes.FirstName',
        'SMS,+16045550182,CA,Android,example-user-id-1,cooking,"books, old",12.5,"Ann ""Jo"""',
        'EMAIL,john.stiles@example.com,US,iOS,example-user-id-2,hiking,,3,John',
        'EMAIL,x@example.com,US,iOS,u3,a,b,not-a-number,X',
        'EMAIL,y@example.com,US',
        'EMAIL,"z@example.com,US,iOS,u4,a,b,1,Z',
      ].join('\n'),
    );
    const id = await importJob(t, app, { S3Url: 's3://moving/csv/users.csv', Format: 'CSV' });
    const j = await finished(t, app, id);
    assert.equal(j.JobStatus, 'COMPLETED');
    assert.equal(j.TotalProcessed, 5);
    assert.equal(j.TotalFailures, 3);
    const f = j.Failures!.join('\n');
    assert.match(f, /users\.csv line 4: Metrics\.score must be a number; got "not-a-number"/);
    assert.match(f, /users\.csv line 5: has 3 values; the header has 9 columns/);
    assert.match(f, /users\.csv line 6: a quoted value is not closed/);
    const stored = storedEndpoints(t.dataDir, app);
    assert.equal(stored.length, 2);
    const one = stored.find((e) => e.User.UserId === 'example-user-id-1');
    assert.deepEqual(one.Attributes, { interests: ['cooking', 'books, old'] });
    assert.deepEqual(one.Metrics, { score: 12.5 });
    assert.deepEqual(one.User.UserAttributes, { FirstName: ['Ann "Jo"'] });
    assert.equal(one.Location.Country, 'CA');
    assert.equal(one.ChannelType, 'SMS');
    const two = stored.find((e) => e.User.UserId === 'example-user-id-2');
    assert.deepEqual(two.Attributes, { interests: ['hiking'] }, 'an empty value adds nothing');
    // The same file again: the lines without Id name the same endpoints, so nothing is added.
    const again = await finished(t, app, await importJob(t, app, { S3Url: 's3://moving/csv/users.csv', Format: 'CSV' }));
    assert.equal(again.TotalProcessed, 5);
    assert.equal(storedEndpoints(t.dataDir, app).length, 4, 'a second job has its own ids for lines without Id (as a second Pinpoint import would)');
    assert.deepEqual(splitCsv('a,"b,c",,"d""e"'), ['a', 'b,c', '', 'd"e']);
  });

  test('a CSV header naming something Pinpoint does not import fails that object, naming the column', async () => {
    const app = await newApp(t, 'csv-header');
    await put('moving', 'badcsv/x.csv', 'ChannelType,Address,Favourite.Colour\nSMS,+1,blue\n');
    const j = await finished(t, app, await importJob(t, app, { S3Url: 's3://moving/badcsv/', Format: 'CSV' }));
    assert.equal(j.JobStatus, 'FAILED');
    assert.deepEqual([j.TotalPieces, j.CompletedPieces, j.FailedPieces], [1, 0, 1]);
    assert.match(j.Failures![0], /x\.csv: line 1: CSV header column "Favourite\.Colour" is not an endpoint attribute/);
  });

  test(`export → import round trip: endpoints equal field by field (pieces of at most ${EXPORT_PIECE_MAX_BYTES} bytes, gzipped)`, async () => {
    const source = await newApp(t, 'export-source');
    const N = 25_000;
    // Seeded through an import job (UpdateEndpointsBatch would take 250 requests); big enough for two export pieces.
    const lines: string[] = [];
    for (let i = 0; i < N; i++) lines.push(endpointLine(i));
    await put('moving', 'seed/all.json', lines.join('\n'));
    const seeded = await finished(t, source, await importJob(t, source, { S3Url: 's3://moving/seed/all.json' }));
    assert.equal(seeded.TotalFailures, 0, JSON.stringify(seeded.Failures));
    // Endpoint states an import cannot produce by itself: INACTIVE, opted out, other dates.
    await t.pinpoint.send(new PP.UpdateEndpointCommand({ ApplicationId: source, EndpointId: 'ep-7', EndpointRequest: { EndpointStatus: 'INACTIVE', OptOut: 'ALL', EffectiveDate: '2020-01-02T03:04:05.000Z', RequestId: 'r-1' } }));

    const exp = await t.pinpoint.send(new PP.CreateExportJobCommand({ ApplicationId: source, ExportJobRequest: { S3UrlPrefix: 's3://moving/exports/', RoleArn: roleArn('jobs') } }));
    const exportId = exp.ExportJobResponse!.Id!;
    const done = await finished(t, source, exportId, 'export');
    assert.equal(done.JobStatus, 'COMPLETED', JSON.stringify(done.Failures));
    assert.equal(done.Type, 'EXPORT');
    assert.equal(done.TotalProcessed, N);
    assert.ok(done.TotalPieces! >= 2, `pieces: ${done.TotalPieces}`);
    assert.equal(done.CompletedPieces, done.TotalPieces);
    const files = (await readdir(join(bucketDir('moving'), 'exports', exportId))).sort();
    assert.equal(files.length, done.TotalPieces);
    let lineCount = 0;
    for (const file of files) {
      assert.match(file, /^\d{5}\.json\.gz$/);
      const raw = gunzipSync(await readFile(join(bucketDir('moving'), 'exports', exportId, file)));
      assert.ok(raw.length <= EXPORT_PIECE_MAX_BYTES, `${file} is ${raw.length} bytes`);
      lineCount += raw.toString().trim().split('\n').length;
    }
    assert.equal(lineCount, N);

    const target = await newApp(t, 'import-target');
    const imp = await finished(t, target, await importJob(t, target, { S3Url: `s3://moving/exports/${exportId}/` }));
    assert.equal(imp.JobStatus, 'COMPLETED');
    assert.equal(imp.TotalProcessed, N);
    assert.equal(imp.TotalFailures, 0, JSON.stringify(imp.Failures));
    const before = storedEndpoints(t.dataDir, source);
    const after_ = storedEndpoints(t.dataDir, target);
    assert.equal(after_.length, before.length);
    for (let i = 0; i < before.length; i++) assert.deepEqual({ ...after_[i], ApplicationId: source }, before[i], `endpoint ${before[i].Id}`);
    assert.equal(after_.find((e) => e.Id === 'ep-7').EndpointStatus, 'INACTIVE');
    const exports = (await t.pinpoint.send(new PP.GetExportJobsCommand({ ApplicationId: source }))).ExportJobsResponse!;
    assert.deepEqual(exports.Item!.map((x) => x.Id), [exportId]);
  });

  test('the role: without s3:GetObject the job FAILS saying so; trust, PassRole and account are checked on create', async () => {
    const app = await newApp(t, 'roles');
    await put('moving', 'roles/a.json', endpointLine(1));
    const listOnly = await createRole(t, 'list-only', ['s3:ListBucket']);
    const j = await finished(t, app, await importJob(t, app, { S3Url: 's3://moving/roles/', RoleArn: listOnly }));
    assert.equal(j.JobStatus, 'FAILED');
    assert.equal(j.FailedPieces, 1);
    assert.match(j.Failures![0], /Access denied: role arn:aws:iam::000000000000:role\/list-only may not s3:GetObject on arn:aws:s3:::moving\/roles\/a\.json/);
    assert.equal(storedEndpoints(t.dataDir, app).length, 0);
    const none = await createRole(t, 'no-rights', []);
    const j2 = await finished(t, app, await importJob(t, app, { S3Url: 's3://moving/roles/', RoleArn: none }));
    assert.match(j2.Failures![0], /may not s3:ListBucket on arn:aws:s3:::moving/);
    await t.pinpoint.send(new PP.UpdateEndpointCommand({ ApplicationId: app, EndpointId: 'e1', EndpointRequest: { ChannelType: 'SMS', Address: '+1' } }));
    const exp = await t.pinpoint.send(new PP.CreateExportJobCommand({ ApplicationId: app, ExportJobRequest: { S3UrlPrefix: 's3://moving/x/', RoleArn: listOnly } }));
    const e = await finished(t, app, exp.ExportJobResponse!.Id!, 'export');
    assert.equal(e.JobStatus, 'FAILED');
    assert.match(e.Failures![0], /may not s3:PutObject/);

    const refused = async (req: Partial<PP.ImportJobRequest>, pattern: RegExp, name = 'BadRequestException') => {
      await assert.rejects(importJob(t, app, { S3Url: 's3://moving/roles/', ...req }), (err: any) => {
        assert.equal(err.name, name);
        assert.match(err.message, pattern);
        return true;
      });
    };
    const untrusting = await createRole(t, 'untrusting', ['s3:GetObject'], JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'firehose.amazonaws.com' }, Action: 'sts:AssumeRole' }] }));
    await refused({ RoleArn: untrusting }, /does not let pinpoint\.amazonaws\.com assume it/);
    await refused({ RoleArn: roleArn('missing') }, /role arn:aws:iam::000000000000:role\/missing does not exist/);
    await refused({ RoleArn: 'arn:aws:iam::111111111111:role/jobs' }, /belongs to account 111111111111/);
    await refused({ RoleArn: 'not-an-arn' }, /is not an IAM role ARN/);
    await refused({ S3Url: 'https://moving/x' }, /S3Url must be an S3 URL/);
    await refused({ S3Url: 's3://Bad_Bucket/x' }, /not a valid bucket name/);
    await refused({ DefineSegment: true, SegmentName: 's' }, /Pinstream has no segments/);
    await refused({ SegmentId: 'seg' }, /no segments to import into/);
    await refused({ RegisterEndpoints: false }, /would import nothing/);
    await refused({ Format: 'XML' as 'JSON' }, /Format/);
    // SegmentName alone is kept in the Definition.
    const named = (await t.pinpoint.send(new PP.CreateImportJobCommand({ ApplicationId: app, ImportJobRequest: { Format: 'JSON', RoleArn: roleArn('jobs'), S3Url: 's3://moving/roles/', SegmentName: 'movers' } }))).ImportJobResponse!;
    assert.equal(named.Definition!.SegmentName, 'movers');
    await assert.rejects(t.pinpoint.send(new PP.GetImportJobCommand({ ApplicationId: app, JobId: 'nope' })), { name: 'NotFoundException' });
    await assert.rejects(t.pinpoint.send(new PP.GetExportJobCommand({ ApplicationId: app, JobId: named.Id! })), { name: 'NotFoundException' }, 'an import job is no export job');
  });

  test(`limits: ${MAX_FAILURE_SAMPLES} failure samples of ${MAX_FAILURE_CHARS} characters at most, lines over ${MAX_IMPORT_LINE_BYTES} bytes fail alone`, async () => {
    const app = await newApp(t, 'limits');
    const lines = [endpointLine(1), `{"Id":"long","Address":"${'x'.repeat(MAX_IMPORT_LINE_BYTES)}"}`, endpointLine(2)];
    for (let i = 0; i < MAX_FAILURE_SAMPLES + 20; i++) lines.push(`{"Id": "${'y'.repeat(MAX_FAILURE_CHARS)}`);
    await put('moving', 'limits/a.json', lines.join('\n'));
    const j = await finished(t, app, await importJob(t, app, { S3Url: 's3://moving/limits/a.json' }));
    assert.equal(j.JobStatus, 'COMPLETED');
    assert.equal(j.TotalFailures, MAX_FAILURE_SAMPLES + 21);
    assert.equal(j.Failures!.length, MAX_FAILURE_SAMPLES);
    assert.match(j.Failures![0], new RegExp(`a\\.json line 2: is ${MAX_IMPORT_LINE_BYTES + 26} bytes; a line may be at most ${MAX_IMPORT_LINE_BYTES} bytes`));
    assert.ok(j.Failures!.every((f) => f.length <= MAX_FAILURE_CHARS));
    assert.equal(storedEndpoints(t.dataDir, app).length, 2);
  });

  test(`limits: an S3Url with more than ${MAX_IMPORT_PIECES} objects FAILS at INITIALIZING; none is an error too`, async () => {
    const app = await newApp(t, 'pieces');
    const dir = join(bucketDir('moving'), 'many');
    await mkdir(dir, { recursive: true });
    for (let i = 0; i <= MAX_IMPORT_PIECES; i++) await writeFile(join(dir, `${i}.json`), '');
    const j = await finished(t, app, await importJob(t, app, { S3Url: 's3://moving/many/' }));
    assert.equal(j.JobStatus, 'FAILED');
    assert.match(j.Failures![0], new RegExp(`holds ${MAX_IMPORT_PIECES + 1} objects; an import job reads at most ${MAX_IMPORT_PIECES}`));
    const empty = await finished(t, app, await importJob(t, app, { S3Url: 's3://moving/nothing-here/' }));
    assert.equal(empty.JobStatus, 'FAILED');
    assert.match(empty.Failures![0], /no JSON objects found at s3:\/\/moving\/nothing-here\//);
  });

  test('the console: Settings shows the project\'s jobs with progress and failures (Chromium)', { skip: browserUnavailable() }, async () => {
    const app = await newApp(t, 'console');
    await put('moving', 'console/a.json', [endpointLine(1), 'not json', endpointLine(2)].join('\n'));
    await finished(t, app, await importJob(t, app, { S3Url: 's3://moving/console/' }));
    await finished(t, app, (await t.pinpoint.send(new PP.CreateExportJobCommand({ ApplicationId: app, ExportJobRequest: { S3UrlPrefix: 's3://moving/console-out/', RoleArn: roleArn('jobs') } }))).ExportJobResponse!.Id!, 'export');
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(15_000);
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(t.server.url + '/');
      await page.fill('input[name=accessKeyId]', t.server.admin.accessKeyId);
      await page.fill('input[name=secretAccessKey]', t.server.admin.secretAccessKey);
      await page.click('form.signin button[type=submit]');
      await page.waitForURL(/#\/projects/);
      await page.goto(`${t.server.url}/console/#/projects/${app}/settings`);
      const rows = page.locator('#endpoint-jobs table.jobs tbody tr[data-job]');
      await rows.first().waitFor();
      assert.equal(await rows.count(), 2);
      const text = await page.locator('#endpoint-jobs').innerText();
      assert.match(text, /Import from s3:\/\/moving\/console\/ \(JSON\)/);
      assert.match(text, /Export to s3:\/\/moving\/console-out\//);
      assert.match(text, /COMPLETED/);
      assert.match(text, /1 failure/);
      await page.click('#endpoint-jobs details summary');
      assert.match(await page.locator('#endpoint-jobs details li').first().innerText(), /console\/a\.json line 2: not valid JSON/);
      await screenshot(page, '20-endpoint-jobs');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });

  test('the AWS CLI: aws pinpoint create-import-job, get-import-job, get-import-jobs, create-export-job', async (c) => {
    if (!(await skipUnlessAws(c))) return;
    const app = await newApp(t, 'cli');
    await put('moving', 'cli/a.json', [endpointLine(1), endpointLine(2)].join('\n'));
    const target = { credentials: t.server.admin, endpoint: t.server.url };
    const created = awsOk(
      await aws(['pinpoint', 'create-import-job', '--application-id', app, '--import-job-request', `S3Url=s3://moving/cli/,RoleArn=${roleArn('jobs')},Format=JSON,RegisterEndpoints=true`], target),
    ).json.ImportJobResponse;
    assert.equal(created.JobStatus, 'CREATED');
    await finished(t, app, created.Id);
    const got = awsOk(await aws(['pinpoint', 'get-import-job', '--application-id', app, '--job-id', created.Id], target)).json.ImportJobResponse;
    assert.equal(got.JobStatus, 'COMPLETED');
    assert.equal(got.TotalProcessed, 2);
    const all = awsOk(await aws(['pinpoint', 'get-import-jobs', '--application-id', app], target)).json.ImportJobsResponse;
    assert.equal(all.Item.length, 1);
    const exp = awsOk(await aws(['pinpoint', 'create-export-job', '--application-id', app, '--export-job-request', `S3UrlPrefix=s3://moving/cli-out/,RoleArn=${roleArn('jobs')}`], target)).json.ExportJobResponse;
    const done = await finished(t, app, exp.Id, 'export');
    assert.equal(done.TotalProcessed, 2);
    const refused = await aws(['pinpoint', 'create-import-job', '--application-id', app, '--import-job-request', `S3Url=s3://moving/cli/,RoleArn=${roleArn('jobs')},Format=JSON,DefineSegment=true,SegmentName=x`], target);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /BadRequestException.*no segments/s);
  });
});

describe('a stop mid-job', () => {
  test('a server stopped while PROCESSING resumes at the next start: exact counts, nothing imported twice', async () => {
    const N = 5000;
    const BATCH = 50;
    let gate: { at: number; reached: () => void; release: Promise<void> } | undefined;
    let releaseGate = () => {};
    const reached = new Promise<void>((resolve) => {
      gate = { at: 2000, reached: resolve, release: new Promise((r) => (releaseGate = r)) };
    });
    const first = await startTestServer({
      deps: {
        jobs: {
          importBatchLines: BATCH,
          beforeBatch: async (_id, processed) => {
            if (gate && processed >= gate.at) {
              const g = gate;
              gate = undefined;
              g.reached();
              await g.release;
            }
          },
        },
      },
    });
    t = first;
    await createRole(first, 'jobs', ['s3:GetObject', 's3:ListBucket']);
    const app = await newApp(first, 'resume');
    // No Id on these lines: a second application of a line would add an endpoint, not update one.
    const lines = (from: number) => Array.from({ length: N / 2 }, (_, i) => JSON.stringify({ ChannelType: 'EMAIL', Address: `u${from + i}@example.com`, Attributes: { n: [String(from + i)] } }));
    await put('moving', 'resume/a.json', [...lines(0), '', 'not json'].join('\n'));
    await put('moving', 'resume/b.json.gz', gzipSync(lines(N / 2).join('\n')));
    const id = await importJob(first, app, { S3Url: 's3://moving/resume/' });
    await reached;
    const mid = (await first.pinpoint.send(new PP.GetImportJobCommand({ ApplicationId: app, JobId: id }))).ImportJobResponse!;
    assert.equal(mid.JobStatus, 'PROCESSING');
    assert.equal(mid.TotalProcessed, 2000);
    const closing = first.server.close();
    releaseGate();
    await closing;
    first.pinpoint.destroy();

    const second = await startTestServer({ dataDir: first.dataDir, deps: { jobs: { importBatchLines: BATCH } } });
    t = second;
    try {
      const j = await finished(second, app, id);
      assert.equal(j.JobStatus, 'COMPLETED');
      assert.deepEqual([j.TotalPieces, j.CompletedPieces, j.FailedPieces], [2, 2, 0]);
      assert.equal(j.TotalProcessed, N + 1);
      assert.equal(j.TotalFailures, 1);
      assert.match(j.Failures![0], new RegExp(`a\\.json line ${N / 2 + 2}: not valid JSON`));
      const stored = storedEndpoints(second.dataDir, app);
      assert.equal(stored.length, N, 'every line once');
      assert.equal(new Set(stored.map((e) => e.Attributes.n[0])).size, N);
    } finally {
      await second.close();
    }
  });
});

describe('s3rver', () => {
  let s3: S3rverHandle;
  let srv: TestServer;
  before(async () => {
    s3 = await startS3rver();
    await createBucket(s3.endpoint, 'remote');
    srv = await startTestServer({ config: { buckets: [{ bucket: 'remote', endpoint: s3.endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }] } });
    t = srv;
    await createRole(srv, 'jobs', ['s3:GetObject', 's3:ListBucket', 's3:PutObject']);
  });
  after(async () => {
    await srv.close();
    await s3.close();
  });

  test('import from and export to an S3-compatible server', async () => {
    const c = s3rverClient(s3.endpoint);
    try {
      await c.send(new PutObjectCommand({ Bucket: 'remote', Key: 'in/a.json.gz', Body: gzipSync([endpointLine(1), 'oops', endpointLine(2)].join('\n')) }));
      await c.send(new PutObjectCommand({ Bucket: 'remote', Key: 'in/b.json', Body: endpointLine(3) }));
      const app = await newApp(srv, 's3rver');
      const j = await finished(srv, app, await importJob(srv, app, { S3Url: 's3://remote/in/' }));
      assert.equal(j.JobStatus, 'COMPLETED');
      assert.equal(j.TotalProcessed, 4);
      assert.match(j.Failures![0], /a\.json\.gz line 2: not valid JSON/);
      assert.equal(storedEndpoints(srv.dataDir, app).length, 3);
      const exp = (await srv.pinpoint.send(new PP.CreateExportJobCommand({ ApplicationId: app, ExportJobRequest: { S3UrlPrefix: 's3://remote/out', RoleArn: roleArn('jobs') } }))).ExportJobResponse!;
      const done = await finished(srv, app, exp.Id!, 'export');
      assert.equal(done.JobStatus, 'COMPLETED');
      const keys = ((await c.send(new ListObjectsCommand({ Bucket: 'remote', Prefix: 'out/' }))).Contents ?? []).map((o) => o.Key);
      assert.deepEqual(keys, [`out/${exp.Id}/00000.json.gz`]);
      const body = await (await c.send(new GetObjectCommand({ Bucket: 'remote', Key: keys[0] }))).Body!.transformToByteArray();
      const ids = gunzipSync(Buffer.from(body)).toString().trim().split('\n').map((l) => JSON.parse(l).Id);
      assert.deepEqual(ids, ['ep-1', 'ep-2', 'ep-3']);
    } finally {
      c.destroy();
    }
  });
});
