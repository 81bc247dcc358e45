// The AWS CLI (`aws`) as a test client of a Pinstream server, for every suite that drives it:
// the clean environment it runs in (no inherited AWS_* variable, ~/.aws config and credentials
// files replaced by /dev/null, instance metadata off, no pager; the credentials are exactly the
// ones given), the runner that points one command at the server and parses its JSON output, and
// whether the command is installed at all (asked once per process), so that the suites report
// their tests as skipped rather than failed where it is not.

import { execFile } from 'node:child_process';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';

/** How long one `aws` command may take before the test fails. */
export const AWS_CLI_TIMEOUT_MS = 60_000;

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials (STS, Cognito) carry a session token. */
  sessionToken?: string;
}

export interface AwsCliTarget {
  credentials: AwsCredentials;
  /** The server's base URL, passed as `--endpoint-url`. */
  endpoint: string;
  /** `--region`; us-east-1 unless given. */
  region?: string;
}

export interface AwsCliResult {
  /** The exit code: 0 on success, non-zero (255, 252, …) on an error the CLI reported. */
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when the command succeeded and printed something; else undefined. */
  json: any;
}

/**
 * The environment for `aws`: this process's variables except every AWS_* one, then the given
 * credentials (none for `aws --version`) and the settings that keep the CLI from reading anything
 * of the machine's own AWS setup.
 */
export function awsEnv(credentials?: AwsCredentials): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v;
  if (credentials) {
    env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
    if (credentials.sessionToken) env.AWS_SESSION_TOKEN = credentials.sessionToken;
  }
  env.AWS_CONFIG_FILE = '/dev/null';
  env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
  env.AWS_EC2_METADATA_DISABLED = 'true';
  env.AWS_PAGER = '';
  return env;
}

/**
 * Runs `aws` with exactly these arguments, asynchronously (the server under test usually runs in
 * this process). Resolves with the exit code however the command ended; rejects when it could not
 * be started (ENOENT and the like) or ran past AWS_CLI_TIMEOUT_MS.
 */
function execAws(args: string[], env: NodeJS.ProcessEnv): Promise<Omit<AwsCliResult, 'json'>> {
  return new Promise((resolve, reject) => {
    execFile('aws', args, { env, timeout: AWS_CLI_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err); // ENOENT etc.
      if (err && (err as any).killed) return reject(new Error(`aws ${args.join(' ')} timed out\n${stderr}`));
      resolve({ code: err ? Number((err as any).code) : 0, stdout, stderr });
    });
  });
}

/**
 * Runs `aws <args> --endpoint-url <endpoint> --region <region> --output json` with the target's
 * credentials. A successful command's output must be JSON (or nothing): anything else fails the test.
 */
export async function aws(args: string[], target: AwsCliTarget): Promise<AwsCliResult> {
  const full = [...args, '--endpoint-url', target.endpoint, '--region', target.region ?? 'us-east-1', '--output', 'json'];
  const r = await execAws(full, awsEnv(target.credentials));
  let json: any;
  if (r.code === 0 && r.stdout.trim() !== '') {
    try {
      json = JSON.parse(r.stdout);
    } catch (e) {
      throw new Error(`aws ${args.join(' ')} printed output that is not JSON: ${(e as Error).message}\n${r.stdout}`);
    }
  }
  return { ...r, json };
}

/** Asserts that the command exited 0 (showing its stderr when not); returns the result. */
export function awsOk(r: AwsCliResult, what = 'aws'): AwsCliResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}\nstderr: ${r.stderr}`);
  return r;
}

let installed: Promise<boolean> | undefined;

/** Whether `aws --version` runs and exits 0; asked once per process. */
export function awsAvailable(): Promise<boolean> {
  installed ??= execAws(['--version'], awsEnv()).then(
    (r) => r.code === 0,
    () => false,
  );
  return installed;
}

/** For the first line of a CLI test: skips it and answers true when the `aws` command is missing. */
export async function skipUnlessAws(t: TestContext): Promise<boolean> {
  if (await awsAvailable()) return false;
  t.skip('aws CLI not installed');
  return true;
}
