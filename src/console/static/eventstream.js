// Settings → Event stream, following Pinpoint's console steps (reference/pinpoint.md §4.2): Edit →
// "Stream to Amazon Kinesis" → a Kinesis data stream or a Firehose delivery stream, picked from a
// list → an existing IAM role or one created automatically → Save (PutEventStream, whose
// validation message is shown as the server wrote it). Below: the stream's delivery health and a
// live tail of a Kinesis destination, read with GetShardIterator/GetRecords like any consumer.

import * as api from './api.js';
import { confirmDialog, errorBox, formatNumber, h, replace } from './dom.js';

/** Records the live tail keeps on screen (newest first). */
export const MAX_TAIL_RECORDS = 50;
/** How often the tail calls GetRecords on each shard. */
export const TAIL_POLL_MS = 1000;
/** How often the delivery health is read again while the page is open. */
export const HEALTH_POLL_MS = 5000;

const KINESIS_ARN = /^arn:aws[a-z-]*:kinesis:([^:]*):(\d{12}):stream\/(.+)$/;
const FIREHOSE_ARN = /^arn:aws[a-z-]*:firehose:([^:]*):(\d{12}):deliverystream\/(.+)$/;

export function destinationArn(kind, session, name) {
  return kind === 'firehose'
    ? `arn:aws:firehose:${session.region}:${session.accountId}:deliverystream/${name}`
    : `arn:aws:kinesis:${session.region}:${session.accountId}:stream/${name}`;
}

/** {kind, name, region, account} of a destination ARN; undefined when it is neither kind. */
export function parseDestination(arn) {
  const k = KINESIS_ARN.exec(arn ?? '');
  if (k) return { kind: 'kinesis', region: k[1], account: k[2], name: k[3] };
  const f = FIREHOSE_ARN.exec(arn ?? '');
  if (f) return { kind: 'firehose', region: f[1], account: f[2], name: f[3] };
  return undefined;
}

export async function renderEventStream(container, { app, onLeave }) {
  const session = api.loadSession();
  const settings = h('section', { class: 'card', id: 'eventstream-settings' });
  const health = h('section', { class: 'card', id: 'eventstream-health' });
  const tail = h('section', { class: 'card', id: 'eventstream-tail' });
  replace(container, h('h2', {}, 'Event stream'), settings, health, tail);

  let current; // the saved EventStream, undefined when streaming is off
  let tailer;
  let healthTimer;
  onLeave(() => {
    tailer?.stop();
    clearTimeout(healthTimer);
  });

  await showSettings();

  async function showSettings(message) {
    replace(settings, h('p', { class: 'loading' }, 'Loading event stream settings…'));
    try {
      current = await api.pinpoint('GET', ['v1', 'apps', app.Id, 'eventstream']);
    } catch (err) {
      if (err.type !== 'NotFoundException') {
        return replace(settings, errorBox(err, h('button', { type: 'button', onclick: () => showSettings() }, 'Try again')));
      }
      current = undefined;
    }
    const dest = parseDestination(current?.DestinationStreamArn);
    replace(
      settings,
      h('div', { class: 'card-head' }, h('h3', {}, 'Settings'), h('button', { type: 'button', name: 'edit', onclick: () => editSettings() }, 'Edit')),
      message ? h('div', { class: 'notice success', role: 'status' }, message) : null,
      current
        ? h('dl', { class: 'facts' },
            h('dt', {}, 'Streaming to'), h('dd', {}, dest?.kind === 'firehose' ? 'Amazon Kinesis Data Firehose delivery stream ' : 'Amazon Kinesis data stream ', h('strong', {}, dest?.name ?? '?')),
            h('dt', {}, 'Destination ARN'), h('dd', { class: 'mono', id: 'destination-arn' }, current.DestinationStreamArn),
            h('dt', {}, 'IAM role'), h('dd', { class: 'mono', id: 'role-arn' }, current.RoleArn),
            h('dt', {}, 'Last modified'), h('dd', {}, `${new Date(current.LastModifiedDate).toLocaleString()} by ${current.LastUpdatedBy ?? '?'}`))
        : h('p', { class: 'empty' }, 'Event streaming is off: this project\'s events are not sent to Amazon Kinesis. Choose Edit to stream them.'),
    );
    showHealth();
    showTail(dest);
  }

  async function showHealth() {
    clearTimeout(healthTimer);
    health.hidden = !current;
    if (!current) return replace(health);
    try {
      const status = await api.pinpoint('GET', ['v1', 'eventstreams', 'status']);
      const item = (status.Item ?? []).find((i) => i.ApplicationId === app.Id);
      const hs = item?.Health;
      replace(
        health,
        h('h3', {}, 'Delivery health'),
        hs
          ? h('dl', { class: 'facts health' },
              h('dt', {}, 'State'), h('dd', {}, h('span', { class: `state state-${hs.state}` }, hs.state)),
              h('dt', {}, 'Events delivered'), h('dd', { id: 'health-delivered' }, formatNumber(hs.delivered ?? 0)),
              h('dt', {}, 'Behind'), h('dd', {}, `${formatNumber(hs.recordsBehind ?? 0)} log records, ${formatNumber((hs.millisBehind ?? 0) / 1000, 1)} s`),
              h('dt', {}, 'Retries / rejected'), h('dd', {}, `${formatNumber(hs.retries ?? 0)} / ${formatNumber(hs.rejected ?? 0)}`),
              h('dt', {}, 'Last delivery'), h('dd', {}, hs.lastDeliveryAt ? new Date(hs.lastDeliveryAt).toLocaleString() : 'none yet'),
              hs.lastError ? [h('dt', {}, 'Last error'), h('dd', { class: 'error-message' }, `${hs.lastError.message} (${new Date(hs.lastError.at).toLocaleString()})`)] : null)
          : h('p', { class: 'empty' }, 'No delivery status reported for this stream.'),
      );
    } catch (err) {
      replace(health, h('h3', {}, 'Delivery health'), errorBox(err));
      if (err.isAuth) return;
    }
    healthTimer = setTimeout(showHealth, HEALTH_POLL_MS);
  }

  function showTail(dest) {
    tailer?.stop();
    tailer = undefined;
    tail.hidden = !dest;
    if (!dest) return replace(tail);
    if (dest.kind !== 'kinesis') {
      return replace(tail, h('h3', {}, 'Live tail'), h('p', { class: 'empty' },
        'The live tail reads Amazon Kinesis data streams only. Records sent to a Firehose delivery stream land in its destination (for example S3).'));
    }
    const from = h('select', { name: 'tail-from' }, h('option', { value: 'LATEST' }, 'New records (LATEST)'), h('option', { value: 'TRIM_HORIZON' }, 'Oldest kept record (TRIM_HORIZON)'));
    const toggle = h('button', { type: 'button', name: 'tail-toggle', class: 'primary' }, 'Start tail');
    const state = h('span', { class: 'muted tail-state' }, 'Stopped.');
    const list = h('ol', { class: 'records', id: 'tail-records' });
    const problem = h('div', { class: 'status' });
    toggle.addEventListener('click', async () => {
      if (tailer) {
        tailer.stop();
        tailer = undefined;
        toggle.textContent = 'Start tail';
        state.textContent = 'Stopped.';
        return;
      }
      replace(list);
      replace(problem);
      tailer = new KinesisTail(dest.name, from.value, {
        onRecords: (records) => {
          for (const r of records) list.prepend(recordItem(r));
          while (list.children.length > MAX_TAIL_RECORDS) list.lastElementChild.remove();
          state.textContent = `Tailing ${dest.name}: ${list.children.length} record(s) shown, newest first.`;
        },
        onError: (err) => {
          replace(problem, errorBox(err));
          toggle.textContent = 'Start tail';
          state.textContent = 'Stopped after an error.';
          tailer = undefined;
        },
      });
      const started = tailer;
      toggle.textContent = 'Stop tail';
      state.textContent = `Connecting to ${dest.name}…`;
      if (await started.start()) state.textContent = `Tailing ${dest.name}: waiting for records…`;
    });
    replace(tail,
      h('div', { class: 'card-head' }, h('h3', {}, 'Live tail'), h('div', { class: 'inline' }, from, toggle)),
      h('p', { class: 'hint' }, `Reads every shard of ${dest.name} once a second with GetRecords and shows the last ${MAX_TAIL_RECORDS} records.`),
      state, problem, list);
  }

  // --- Edit ------------------------------------------------------------------------------------

  function editSettings() {
    const dest = parseDestination(current?.DestinationStreamArn);
    const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: Boolean(current) });
    const kindKinesis = h('input', { type: 'radio', name: 'kind', value: 'kinesis', checked: dest?.kind !== 'firehose' });
    const kindFirehose = h('input', { type: 'radio', name: 'kind', value: 'firehose', checked: dest?.kind === 'firehose' });
    const streamSelect = h('select', { name: 'stream', required: true });
    const streamStatus = h('div', { class: 'status' });
    const roleExisting = h('input', { type: 'radio', name: 'role-mode', value: 'existing', checked: Boolean(current) });
    const roleAuto = h('input', { type: 'radio', name: 'role-mode', value: 'auto', checked: !current });
    const roleSelect = h('select', { name: 'role' });
    const roleStatus = h('div', { class: 'status' });
    const autoName = h('input', { name: 'auto-role-name', value: `pinpoint-event-stream-${app.Id}`.slice(0, 64), readonly: true });
    const saveStatus = h('div', { class: 'status', id: 'save-status' });
    const save = h('button', { type: 'submit', class: 'primary', name: 'save' }, 'Save');
    const details = h('fieldset', { class: 'stream-details' });
    const kind = () => (kindFirehose.checked ? 'firehose' : 'kinesis');

    replace(
      details,
      h('legend', {}, 'Destination'),
      h('label', { class: 'choice' }, kindKinesis, 'Send events to an Amazon Kinesis data stream'),
      h('label', { class: 'choice' }, kindFirehose, 'Send events to an Amazon Kinesis Data Firehose delivery stream'),
      h('label', {}, 'Stream', streamSelect),
      streamStatus,
      h('fieldset', {},
        h('legend', {}, 'IAM role'),
        h('p', { class: 'hint' }, 'Pinstream assumes this role to write the project\'s events to the stream: it must trust pinpoint.amazonaws.com and allow the put and describe actions on the stream.'),
        h('label', { class: 'choice' }, roleExisting, 'Use an existing role'),
        h('label', { class: 'indent' }, 'Role', roleSelect),
        roleStatus,
        h('label', { class: 'choice' }, roleAuto, 'Automatically create a role'),
        h('label', { class: 'indent' }, 'Role name', autoName),
        h('p', { class: 'hint indent' }, 'Creates (or repairs) this role with exactly the permissions the chosen stream needs.')),
    );
    const form = h('form', { class: 'eventstream-form', onsubmit: (e) => { e.preventDefault(); submit(); } },
      h('div', { class: 'card-head' }, h('h3', {}, 'Edit event stream')),
      h('label', { class: 'choice' }, enabled, 'Stream to Amazon Kinesis'),
      details,
      saveStatus,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => showSettings() }, 'Cancel'),
        save));
    replace(settings, form);

    const sync = () => {
      details.disabled = !enabled.checked;
      roleSelect.disabled = !roleExisting.checked;
    };
    enabled.addEventListener('change', sync);
    roleExisting.addEventListener('change', sync);
    roleAuto.addEventListener('change', sync);
    kindKinesis.addEventListener('change', loadStreams);
    kindFirehose.addEventListener('change', loadStreams);
    sync();
    loadStreams();
    loadRoles();

    async function loadStreams() {
      const k = kind();
      replace(streamSelect, h('option', { value: '' }, 'Loading streams…'));
      replace(streamStatus);
      try {
        const names = k === 'firehose' ? await api.listDeliveryStreams() : await api.listKinesisStreams();
        if (k !== kind()) return; // the choice changed while loading
        replace(streamSelect, h('option', { value: '' }, names.length ? 'Choose a stream…' : 'No streams in this account and region'),
          names.map((n) => h('option', { value: n, selected: dest?.kind === k && dest.name === n }, n)));
        if (names.length === 0) {
          replace(streamStatus, h('p', { class: 'hint' }, k === 'firehose'
            ? 'Create a delivery stream first (aws firehose create-delivery-stream …).'
            : 'Create a stream first (aws kinesis create-stream --stream-name NAME --shard-count 1).'));
        }
      } catch (err) {
        if (k !== kind()) return;
        replace(streamSelect, h('option', { value: '' }, 'Streams could not be listed'));
        replace(streamStatus, errorBox(err), k === 'firehose' && err.status === 404
          ? h('p', { class: 'hint' }, 'This server does not answer the Firehose API (ListDeliveryStreams); choose a Kinesis data stream.')
          : null);
      }
    }

    async function loadRoles() {
      replace(roleSelect, h('option', { value: '' }, 'Loading roles…'));
      try {
        const roles = await api.listRoles();
        replace(roleSelect, h('option', { value: '' }, roles.length ? 'Choose a role…' : 'No roles in this account'),
          roles.map((r) => h('option', { value: r.arn, selected: r.arn === current?.RoleArn }, r.name)));
      } catch (err) {
        replace(roleSelect, h('option', { value: '' }, 'Roles could not be listed'));
        replace(roleStatus, errorBox(err));
      }
    }

    async function submit() {
      replace(saveStatus);
      if (!enabled.checked) {
        if (!current) return showSettings();
        const ok = await confirmDialog({ title: 'Stop streaming events?', message: `Events of ${app.Name} will no longer be sent to ${current.DestinationStreamArn}.`, confirmLabel: 'Stop streaming' });
        if (!ok) return;
        return run(async () => {
          await api.pinpoint('DELETE', ['v1', 'apps', app.Id, 'eventstream']);
          await showSettings('Event streaming turned off.');
        });
      }
      if (!streamSelect.value) return replace(saveStatus, h('div', { class: 'error' }, 'Choose a stream.'));
      if (roleExisting.checked && !roleSelect.value) return replace(saveStatus, h('div', { class: 'error' }, 'Choose a role, or choose "Automatically create a role".'));
      const DestinationStreamArn = destinationArn(kind(), session, streamSelect.value);
      await run(async () => {
        let RoleArn = roleSelect.value;
        if (roleAuto.checked) {
          replace(saveStatus, h('p', { class: 'loading' }, 'Creating the role…'));
          RoleArn = (await api.pinpoint('POST', ['v1', 'apps', app.Id, 'eventstream', 'role'], { body: { DestinationStreamArn } })).RoleArn;
        }
        replace(saveStatus, h('p', { class: 'loading' }, 'Saving…'));
        await api.pinpoint('POST', ['v1', 'apps', app.Id, 'eventstream'], { body: { DestinationStreamArn, RoleArn } });
        await showSettings('Event stream saved. New events of this project are now streamed to it.');
      });
    }

    async function run(step) {
      save.disabled = true;
      try {
        await step();
      } catch (err) {
        replace(saveStatus, errorBox(err));
        save.disabled = false;
      }
    }
  }
}

function recordItem(r) {
  const { text, json } = decodeData(r.Data);
  const arrival = r.ApproximateArrivalTimestamp ? new Date(r.ApproximateArrivalTimestamp * 1000).toLocaleTimeString() : '';
  return h('li', { class: 'record' },
    h('div', { class: 'record-head' },
      json?.event_type ? h('strong', { class: 'event-type' }, json.event_type) : null,
      h('span', { class: 'muted' }, ` ${r.shardId} · seq ${r.SequenceNumber} · key ${r.PartitionKey} · ${arrival}`)),
    h('pre', { class: 'mono' }, json ? JSON.stringify(json, null, 2) : text));
}

function decodeData(base64) {
  const bytes = Uint8Array.from(atob(base64 ?? ''), (c) => c.charCodeAt(0));
  const text = new TextDecoder().decode(bytes);
  try {
    return { text, json: JSON.parse(text) };
  } catch {
    return { text };
  }
}

/**
 * A Kinesis consumer in the browser: one iterator per open shard, GetRecords on each every
 * TAIL_POLL_MS, following NextShardIterator. A shard closed by resharding drops out; its
 * children are not followed (a tail of the live shards, not an exact replay).
 */
class KinesisTail {
  constructor(streamName, from, { onRecords, onError }) {
    this.streamName = streamName;
    this.from = from;
    this.onRecords = onRecords;
    this.onError = onError;
    this.stopped = false;
  }

  /** Resolves true once every open shard has an iterator and polling runs. */
  async start() {
    try {
      const shards = (await api.kinesis('ListShards', { StreamName: this.streamName })).Shards ?? [];
      this.iterators = new Map();
      for (const shard of shards) {
        if (shard.SequenceNumberRange?.EndingSequenceNumber) continue;
        const out = await api.kinesis('GetShardIterator', { StreamName: this.streamName, ShardId: shard.ShardId, ShardIteratorType: this.from });
        this.iterators.set(shard.ShardId, out.ShardIterator);
      }
      if (this.stopped) return false;
      this.poll();
      return true;
    } catch (err) {
      if (!this.stopped) this.onError(err);
      return false;
    }
  }

  async poll() {
    if (this.stopped) return;
    try {
      for (const [shardId, iterator] of this.iterators) {
        const out = await api.kinesis('GetRecords', { ShardIterator: iterator, Limit: MAX_TAIL_RECORDS });
        if (this.stopped) return;
        if (out.NextShardIterator) this.iterators.set(shardId, out.NextShardIterator);
        else this.iterators.delete(shardId);
        if (out.Records?.length) this.onRecords(out.Records.map((r) => ({ ...r, shardId })));
      }
    } catch (err) {
      if (!this.stopped) this.onError(err);
      return;
    }
    this.timer = setTimeout(() => this.poll(), TAIL_POLL_MS);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
