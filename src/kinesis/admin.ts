// The embedded Kinesis operations infrastructure tools (Terraform, CDK, CloudFormation) call
// besides the data path: tags by ARN on streams and consumers (Tag/UntagResource,
// ListTagsForResource), enhanced monitoring, capacity-mode switches, account limits and settings,
// resource-based policies on streams and consumers (stored here, evaluated by the IAM authorizer
// through kinesisResourcePolicies), and a stream's maximum record size. Merged into the operation
// table by kinesisService(). Per-stream state lives in the stream documents (StreamState), the
// account settings in kinesis_account_settings.

import { timestampOut, type Operations } from '../http/awsjson.js';
import { parsePolicy, PolicyError, type PolicyDocument } from '../iam/policy.js';
import type { Inputs } from '../models/generated/kinesis-inputs.js';
import type { KinesisServices } from './api.js';
import { invalidArgument, limitExceeded, resourceNotFound } from './errors.js';
import {
  MAX_MODE_SWITCHES_PER_DAY,
  MAX_ON_DEMAND_STREAMS,
  MAX_RESOURCE_POLICY_BYTES,
  MAX_SHARDS_PER_ACCOUNT,
  MIN_BILLING_COMMITMENT_MS,
} from './limits.js';
import { SHARD_LEVEL_METRICS } from './metrics.js';
import type { ConsumerState, StreamMode, StreamRegistry, StreamState } from './streams.js';
import { checkTagCharacters, mergeTags, tagList } from './tags.js';

const DAY_MS = 24 * 3600_000;
const STREAM_ARN_RE = /^arn:aws:kinesis:([^:]*):(\d{12}):stream\/([a-zA-Z0-9_.-]+)$/;
const CONSUMER_ARN_RE = /^arn:aws:kinesis:([^:]*):(\d{12}):stream\/([a-zA-Z0-9_.-]+)\/consumer\/([a-zA-Z0-9_.-]+):(\d+)$/;
const BILLING_COMMITMENT = 'MinimumThroughputBillingCommitment';

/** A stream, or one of its registered consumers, named by a ResourceARN. */
export type KinesisResource = { kind: 'stream'; s: StreamState } | { kind: 'consumer'; s: StreamState; c: ConsumerState; arn: string };

/**
 * The stream or consumer an ARN names, in this server's own spelling only (IAM policies are
 * matched against that spelling). Undefined when there is none.
 */
export function findResource(registry: StreamRegistry, arn: string): KinesisResource | undefined {
  const { region, accountId } = registry.opts;
  const c = CONSUMER_ARN_RE.exec(arn);
  const m = c ?? STREAM_ARN_RE.exec(arn);
  if (!m || m[1] !== region || m[2] !== accountId) return undefined;
  let s: StreamState;
  try {
    s = registry.get(m[3]);
  } catch {
    return undefined;
  }
  if (!c) return { kind: 'stream', s };
  const consumer = s.consumers.find((x) => x.name === c[4] && String(Math.floor(x.createdMs / 1000)) === c[5]);
  return consumer ? { kind: 'consumer', s, c: consumer, arn } : undefined;
}

/** The IAM authorizer's view of the resource-based policies stored here (parsed once per text). */
export function kinesisResourcePolicies(registry: StreamRegistry): (arn: string) => PolicyDocument | undefined {
  const parsed = new Map<string, PolicyDocument>();
  return (arn) => {
    if (!arn.startsWith('arn:aws:kinesis:')) return undefined;
    const r = findResource(registry, arn);
    const text = r === undefined ? undefined : r.kind === 'stream' ? r.s.policy : r.c.policy;
    if (text === undefined) return undefined;
    let doc = parsed.get(text);
    if (!doc) {
      doc = parsePolicy(text, 'resource');
      if (parsed.size >= 1000) parsed.clear();
      parsed.set(text, doc);
    }
    return doc;
  };
}

interface BillingCommitment {
  status: 'ENABLED' | 'DISABLED' | 'ENABLED_UNTIL_EARLIEST_ALLOWED_END';
  startedMs?: number;
  endedMs?: number;
  earliestEndMs?: number;
}

export function adminOperations(k: KinesisServices): Operations<Inputs> {
  const { registry, clock } = k;
  const { accountId } = registry.opts;

  /** The resource a (model-validated) ResourceARN names, or AWS's not-found wording for its kind. */
  function resource(i: { ResourceARN: string }): KinesisResource {
    const arn = i.ResourceARN;
    const found = findResource(registry, arn);
    if (found) return found;
    if (CONSUMER_ARN_RE.test(arn)) throw resourceNotFound(`Consumer ${arn} under account ${accountId} not found.`);
    const m = STREAM_ARN_RE.exec(arn);
    throw resourceNotFound(m ? `Stream ${m[3]} under account ${accountId} not found.` : `Resource ${arn} under account ${accountId} not found.`);
  }

  const saveResource = (r: KinesisResource) => registry.save(r.s);
  const failedTo = (verb: 'add tags to' | 'remove tags from', r: KinesisResource) =>
    r.kind === 'stream' ? `Failed to ${verb} stream ${r.s.name} under account ${accountId}` : `Failed to ${verb} consumer ${r.arn} under account ${accountId}`;

  async function setMonitoring(i: Inputs['EnableEnhancedMonitoring'], enable: boolean) {
    const s = registry.requireActive(registry.resolveName(i));
    const given = new Set<string>(i.ShardLevelMetrics.includes('ALL') ? SHARD_LEVEL_METRICS : i.ShardLevelMetrics);
    const current = s.shardLevelMetrics ?? [];
    const desired = SHARD_LEVEL_METRICS.filter((m) => (enable ? current.includes(m) || given.has(m) : current.includes(m) && !given.has(m)));
    s.shardLevelMetrics = desired;
    await registry.markUpdating(s);
    return { StreamName: s.name, StreamARN: registry.arn(s.name), CurrentShardLevelMetrics: current, DesiredShardLevelMetrics: desired };
  }

  function commitment(): BillingCommitment {
    const text = registry.accountSetting(BILLING_COMMITMENT);
    const c: BillingCommitment = text ? JSON.parse(text) : { status: 'DISABLED' };
    // A disable asked for before the earliest end takes effect then.
    if (c.status === 'ENABLED_UNTIL_EARLIEST_ALLOWED_END' && clock.now() >= c.earliestEndMs!) return { status: 'DISABLED', startedMs: c.startedMs, endedMs: c.earliestEndMs };
    return c;
  }

  const commitmentShape = (c: BillingCommitment) => ({
    [BILLING_COMMITMENT]: {
      Status: c.status,
      ...(c.startedMs !== undefined ? { StartedAt: timestampOut(c.startedMs) } : {}),
      ...(c.endedMs !== undefined ? { EndedAt: timestampOut(c.endedMs) } : {}),
      ...(c.earliestEndMs !== undefined && c.status !== 'DISABLED' ? { EarliestAllowedEndAt: timestampOut(c.earliestEndMs) } : {}),
    },
  });

  return {
    async TagResource(i) {
      const tags = i.Tags;
      const r = resource(i);
      if (r.kind === 'stream') r.s.tags = mergeTags(r.s.tags, tags, 'stream', failedTo('add tags to', r));
      else r.c.tags = mergeTags(r.c.tags, tags, 'consumer', failedTo('add tags to', r));
      await saveResource(r);
      return undefined;
    },

    async UntagResource(i) {
      const keys = i.TagKeys;
      const r = resource(i);
      checkTagCharacters(keys, failedTo('remove tags from', r));
      const tags = r.kind === 'stream' ? r.s.tags : (r.c.tags ??= {});
      for (const key of keys) if (Object.hasOwn(tags, key)) delete tags[key];
      await saveResource(r);
      return undefined;
    },

    ListTagsForResource(i) {
      const r = resource(i);
      return { Tags: tagList(r.kind === 'stream' ? r.s.tags : r.c.tags) };
    },

    EnableEnhancedMonitoring: (i) => setMonitoring(i, true),
    DisableEnhancedMonitoring: (i) => setMonitoring(i, false),

    async UpdateStreamMode(i) {
      const mode = i.StreamModeDetails.StreamMode as StreamMode;
      const s = registry.requireActive(registry.resolveName({ StreamARN: i.StreamARN }));
      if (s.mode === mode) throw invalidArgument(`Stream ${s.name} under account ${accountId} is already in ${mode} mode.`);
      const now = clock.now();
      const recent = (s.modeSwitches ?? []).filter((t) => now - t < DAY_MS);
      if (recent.length >= MAX_MODE_SWITCHES_PER_DAY) {
        throw limitExceeded(
          `Stream ${s.name} under account ${accountId} has already switched capacity mode ${recent.length} times in the last 24 hours; ` +
            `at most ${MAX_MODE_SWITCHES_PER_DAY} switches are allowed in 24 hours.`,
        );
      }
      if (mode === 'ON_DEMAND') registry.ensureOnDemandCapacity();
      // The open shards stay as they are: AWS keeps a stream's shards across the switch (an
      // ON_DEMAND stream here does not scale itself; UpdateShardCount, Split and Merge refuse it).
      s.mode = mode;
      s.modeSwitches = [...recent, now];
      await registry.markUpdating(s);
      return undefined;
    },

    DescribeLimits() {
      registry.list(); // settles deletions, so streams already gone are not counted
      return {
        ShardLimit: MAX_SHARDS_PER_ACCOUNT,
        OpenShardCount: registry.openShardTotal(),
        OnDemandStreamCount: registry.onDemandStreamCount(),
        OnDemandStreamCountLimit: MAX_ON_DEMAND_STREAMS,
      };
    },

    DescribeAccountSettings: () => commitmentShape(commitment()),

    async UpdateAccountSettings(i) {
      const v = i.MinimumThroughputBillingCommitment;
      const now = clock.now();
      const c = commitment();
      let next: BillingCommitment = c;
      if (v.Status === 'ENABLED') {
        // Enabling again before the earliest end cancels a pending disable.
        if (c.status === 'ENABLED_UNTIL_EARLIEST_ALLOWED_END') next = { ...c, status: 'ENABLED' };
        else if (c.status === 'DISABLED') next = { status: 'ENABLED', startedMs: now, earliestEndMs: now + MIN_BILLING_COMMITMENT_MS };
      } else if (c.status !== 'DISABLED') {
        next = now >= c.earliestEndMs! ? { status: 'DISABLED', startedMs: c.startedMs, endedMs: now } : { ...c, status: 'ENABLED_UNTIL_EARLIEST_ALLOWED_END' };
      }
      await registry.setAccountSetting(BILLING_COMMITMENT, JSON.stringify(next));
      return commitmentShape(next);
    },

    async PutResourcePolicy(i) {
      const r = resource(i);
      const policy = i.Policy;
      const bytes = Buffer.byteLength(policy);
      if (bytes > MAX_RESOURCE_POLICY_BYTES) {
        throw limitExceeded(`Resource policy is ${bytes} bytes; the maximum size of a resource policy is ${MAX_RESOURCE_POLICY_BYTES} bytes.`);
      }
      try {
        parsePolicy(policy, 'resource');
      } catch (e) {
        if (e instanceof PolicyError) throw invalidArgument(`Invalid resource policy: ${e.message}`);
        throw e;
      }
      if (r.kind === 'stream') r.s.policy = policy;
      else r.c.policy = policy;
      await saveResource(r);
      return undefined;
    },

    GetResourcePolicy(i) {
      const r = resource(i);
      return { Policy: (r.kind === 'stream' ? r.s.policy : r.c.policy) ?? '{}' };
    },

    async DeleteResourcePolicy(i) {
      const r = resource(i);
      if (r.kind === 'stream') delete r.s.policy;
      else delete r.c.policy;
      await saveResource(r);
      return undefined;
    },

    async UpdateMaxRecordSize(i) {
      const size = i.MaxRecordSizeInKiB;
      const s = registry.requireActive(registry.resolveName({ StreamARN: i.StreamARN }));
      s.maxRecordSizeKiB = size;
      await registry.markUpdating(s);
      return undefined;
    },
  };
}
