// The dashboard tabs (reference/pinpoint.md §5): a date range (last 30 days by default), the
// filters each dashboard supports, tiles and charts drawn from the generic DashboardResult, a CSV
// download, and for Funnels the funnel editor. Everything shown comes from the analytics routes
// GET /v1/apps/{id}/dashboards/{name}, …/analytics/filters and …/funnels.

import * as api from './api.js';
import { renderChart } from './charts.js';
import { confirmDialog, errorBox, formatNumber, h, replace } from './dom.js';

export const DASHBOARDS = [
  ['overview', 'Overview'],
  ['usage', 'Usage'],
  ['revenue', 'Revenue'],
  ['events', 'Events'],
  ['funnels', 'Funnels'],
  ['demographics', 'Demographics'],
  ['campaigns', 'Campaigns'],
  ['journeys', 'Journeys'],
];

/** The range shown when none is chosen, as in Pinpoint's console. */
export const DEFAULT_RANGE_DAYS = 30;

/** Which filters each dashboard offers (the query parameters of the dashboards route). */
const FILTERS = {
  usage: ['endpoint-attribute'],
  revenue: ['endpoint-attribute'],
  events: ['event-type', 'event-attribute', 'endpoint-attribute'],
  demographics: ['channel'],
  funnels: ['funnel-id'],
  campaigns: ['campaign-id'],
  journeys: ['journey-id'],
};

/** Pinpoint's ChannelType values, for the Demographics channel filter. */
const CHANNELS = ['APNS', 'APNS_SANDBOX', 'APNS_VOIP', 'APNS_VOIP_SANDBOX', 'ADM', 'BAIDU', 'CUSTOM', 'EMAIL', 'GCM', 'IN_APP', 'PUSH', 'SMS', 'VOICE'];

const day = (d) => d.toISOString().slice(0, 10);

/** The last DEFAULT_RANGE_DAYS UTC days, today included. */
export function defaultRange(now = new Date()) {
  return { start: day(new Date(now.getTime() - (DEFAULT_RANGE_DAYS - 1) * 86_400_000)), end: day(now) };
}

export async function renderDashboard(container, { app, name, params, setParams }) {
  const range = defaultRange();
  const state = {
    start: params.get('start') || range.start,
    end: params.get('end') || range.end,
  };
  for (const f of FILTERS[name] ?? []) state[f] = params.get(f) ?? '';

  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  const notice = h('div', { class: 'status' });
  const controls = h('div', { class: 'filters' });
  const start = h('input', { type: 'date', name: 'start', value: state.start, required: true });
  const end = h('input', { type: 'date', name: 'end', value: state.end, required: true });
  const toolbar = h(
    'form',
    { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); apply(); } },
    h('label', {}, 'From', start),
    h('label', {}, 'To', end),
    controls,
    h('button', { type: 'submit', class: 'primary' }, 'Apply'),
    h('button', { type: 'button', name: 'refresh', onclick: () => load() }, 'Refresh'),
    h('button', { type: 'button', class: 'link', name: 'download', onclick: () => downloadCsv() }, 'Download CSV'),
  );
  const funnelPanel = name === 'funnels' ? h('div', { class: 'funnel-panel' }) : null;
  replace(container, toolbar, funnelPanel, notice, results);

  const inputs = {};
  let filters;
  if ((FILTERS[name] ?? []).some((f) => f !== 'funnel-id')) filters = await loadFilters();
  for (const f of FILTERS[name] ?? []) {
    if (f !== 'funnel-id') controls.append(filterControl(f));
  }
  if (funnelPanel) await renderFunnels();
  await load();

  function apply() {
    state.start = start.value;
    state.end = end.value;
    for (const [f, read] of Object.entries(inputs)) state[f] = read();
    setParams(new URLSearchParams(Object.entries(state).filter(([, v]) => v)));
    return load();
  }

  /** The dashboards route's query: the range plus every filter that is set. */
  function query() {
    return Object.fromEntries(Object.entries(state).filter(([, v]) => v));
  }

  async function load() {
    if (name === 'funnels' && !state['funnel-id']) {
      return replace(results, h('p', { class: 'empty' }, 'Choose a funnel above, or create one: name it and list its steps in order.'));
    }
    replace(results, h('p', { class: 'loading' }, 'Loading dashboard…'));
    try {
      const result = await api.pinpoint('GET', ['v1', 'apps', app.Id, 'dashboards', name], { query: query() });
      renderResult(result);
    } catch (err) {
      replace(results, errorBox(err, h('button', { type: 'button', onclick: () => load() }, 'Try again')));
    }
  }

  function renderResult(result) {
    const empty = isEmpty(result);
    replace(
      results,
      empty
        ? h('div', { class: 'empty' },
            h('p', {}, h('strong', {}, 'No events in this range'), ` (${result.range?.start ?? state.start} to ${result.range?.end ?? state.end}) — ` +
              'send events with PutEvents, for example '),
            h('pre', { class: 'mono' }, `aws pinpoint put-events --application-id ${app.Id} --endpoint-url ${location.origin} --events-request file://events.json`),
            h('p', {}, 'or from an app using the Amplify / AWS mobile SDKs pointed at this server, then choose Refresh.'))
        : null,
      h('div', { class: 'tiles' }, (result.tiles ?? []).map(tile)),
      empty ? null : h('div', { class: 'charts' }, (result.charts ?? []).map(renderChart)),
    );
  }

  function filterControl(f) {
    if (f === 'event-type') {
      const types = filters?.eventTypes ?? [];
      const select = h('select', { name: 'event-type' }, h('option', { value: '' }, 'All event types'), types.map((t) => h('option', { value: t, selected: t === state[f] }, t)));
      if (state[f] && !types.includes(state[f])) select.append(h('option', { value: state[f], selected: true }, state[f]));
      inputs[f] = () => select.value;
      return h('label', {}, 'Event type', select);
    }
    if (f === 'event-attribute' || f === 'endpoint-attribute') {
      const names = (f === 'event-attribute' ? filters?.eventAttributes : filters?.endpointAttributes) ?? [];
      const [current = '', values = ''] = splitOnce(state[f], ':');
      const select = h('select', { name: `${f}-name` }, h('option', { value: '' }, '—'), names.map((n) => h('option', { value: n, selected: n === current }, n)));
      if (current && !names.includes(current)) select.append(h('option', { value: current, selected: true }, current));
      const valueInput = h('input', { name: `${f}-values`, value: values, placeholder: 'value1, value2' });
      inputs[f] = () => (select.value && valueInput.value.trim() ? `${select.value}:${valueInput.value.split(',').map((v) => v.trim()).filter(Boolean).join(',')}` : '');
      return h('label', {}, f === 'event-attribute' ? 'Event attribute' : 'Endpoint attribute', h('span', { class: 'pair' }, select, valueInput));
    }
    if (f === 'channel') {
      const select = h('select', { name: 'channel' }, h('option', { value: '' }, 'All channels'), CHANNELS.map((c) => h('option', { value: c, selected: c === state[f] }, c)));
      inputs[f] = () => select.value;
      return h('label', {}, 'Channel', select);
    }
    const input = h('input', { name: f, value: state[f], placeholder: 'all' });
    inputs[f] = () => input.value.trim();
    return h('label', {}, f === 'campaign-id' ? 'Campaign ID' : 'Journey ID', input);
  }

  async function loadFilters() {
    try {
      return await api.pinpoint('GET', ['v1', 'apps', app.Id, 'analytics', 'filters']);
    } catch (err) {
      replace(notice, h('div', { class: 'notice' }, `Filter choices could not be loaded (${err}); the dashboard is shown unfiltered.`));
      return undefined;
    }
  }

  async function downloadCsv() {
    try {
      const csv = await api.pinpointText(['v1', 'apps', app.Id, 'dashboards', `${name}.csv`], query());
      const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
      const a = h('a', { href: url, download: `${app.Name}-${name}-${state.start}-${state.end}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      replace(notice, errorBox(err));
    }
  }

  // --- Funnels -----------------------------------------------------------------------------------

  async function renderFunnels() {
    replace(funnelPanel, h('p', { class: 'loading' }, 'Loading funnels…'));
    let funnels;
    try {
      funnels = funnelList(await api.pinpoint('GET', ['v1', 'apps', app.Id, 'funnels']));
    } catch (err) {
      return replace(funnelPanel, errorBox(err, h('button', { type: 'button', onclick: renderFunnels }, 'Try again')));
    }
    const select = h('select', { name: 'funnel-id', onchange: () => { state['funnel-id'] = select.value; apply(); } },
      h('option', { value: '' }, funnels.length ? 'Choose a funnel…' : 'No funnels yet'),
      funnels.map((f) => h('option', { value: f.id, selected: f.id === state['funnel-id'] }, `${f.name} (${f.steps.length} steps)`)));
    inputs['funnel-id'] = () => select.value;
    const editor = h('div', { class: 'funnel-editor' });
    replace(
      funnelPanel,
      h('div', { class: 'inline' },
        h('label', {}, 'Funnel', select),
        h('button', { type: 'button', name: 'new-funnel', onclick: () => replace(editor, funnelEditor()) }, 'New funnel'),
        state['funnel-id'] ? h('button', { type: 'button', class: 'danger small', onclick: () => removeFunnel(funnels.find((f) => f.id === state['funnel-id'])) }, 'Delete funnel') : null),
      editor,
    );
  }

  function funnelEditor() {
    const status = h('div', { class: 'status' });
    const nameInput = h('input', { name: 'funnel-name', required: true, placeholder: 'Checkout' });
    const steps = h('ol', { class: 'steps' });
    const types = h('datalist', { id: 'event-types' }, (filters?.eventTypes ?? []).map((t) => h('option', { value: t })));
    const addStep = () => {
      const row = h('li', { class: 'step' },
        h('input', { name: 'step-name', placeholder: 'Step name', required: true }),
        h('input', { name: 'step-event-type', list: 'event-types', placeholder: 'Event type', required: true }),
        h('input', { name: 'step-attribute', placeholder: 'attribute:value1,value2 (optional)' }),
        h('button', { type: 'button', class: 'link', onclick: () => row.remove() }, 'Remove'));
      steps.append(row);
    };
    addStep();
    addStep();
    const form = h('form', { class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      const body = {
        name: nameInput.value.trim(),
        steps: [...steps.children].map((li) => {
          const [stepName, eventType, attr] = [...li.querySelectorAll('input')].map((i) => i.value.trim());
          const [attrName, values = ''] = splitOnce(attr, ':');
          return { name: stepName, eventType, ...(attrName ? { attributes: [{ name: attrName, values: values.split(',').map((v) => v.trim()).filter(Boolean) }] } : {}) };
        }),
      };
      replace(status, h('p', { class: 'loading' }, 'Saving funnel…'));
      try {
        const saved = funnelOf(await api.pinpoint('POST', ['v1', 'apps', app.Id, 'funnels'], { body }));
        state['funnel-id'] = saved?.id ?? '';
        await renderFunnels();
        await apply();
      } catch (err) {
        replace(status, errorBox(err));
      }
    } },
      h('h2', {}, 'New funnel'),
      h('label', {}, 'Name', nameInput),
      h('p', { class: 'hint' }, 'Steps in order: each is an event type (standard or custom), optionally narrowed to attribute values.'),
      steps, types,
      h('div', { class: 'actions' },
        h('button', { type: 'button', name: 'add-step', onclick: addStep }, 'Add step'),
        h('button', { type: 'submit', class: 'primary' }, 'Save funnel')),
      status);
    return form;
  }

  async function removeFunnel(f) {
    if (!f || !(await confirmDialog({ title: `Delete funnel ${f.name}?`, message: 'The funnel definition is deleted; events are not.' }))) return;
    try {
      await api.pinpoint('DELETE', ['v1', 'apps', app.Id, 'funnels', f.id]);
      state['funnel-id'] = '';
      await renderFunnels();
      await apply();
    } catch (err) {
      replace(notice, errorBox(err));
    }
  }
}

function splitOnce(s, sep) {
  const i = (s ?? '').indexOf(sep);
  return i < 0 ? [s ?? ''] : [s.slice(0, i), s.slice(i + 1)];
}

/** The funnels route answers a list; accept it bare or wrapped, as the route documents it. */
function funnelList(out) {
  const items = Array.isArray(out) ? out : out?.Item ?? out?.funnels ?? out?.items ?? [];
  return items.map(funnelOf).filter(Boolean);
}

function funnelOf(f) {
  if (!f) return undefined;
  return { id: f.id ?? f.Id, name: f.name ?? f.Name, steps: f.steps ?? f.Steps ?? [] };
}

function tile(t) {
  return h('div', { class: 'tile', dataset: { tileId: t.id } }, h('div', { class: 'tile-label' }, t.label), h('div', { class: 'tile-value' }, formatTile(t.value, t.unit)));
}

export function formatTile(value, unit) {
  if (value === null || value === undefined) return '—';
  if (unit === 'usd') return `$${formatNumber(value, 2)}`;
  if (unit === 'percent') return `${formatNumber(value, 1)}%`;
  return formatNumber(value, unit === 'ratio' ? 3 : 2);
}

/** No tile and no chart cell holds a non-zero number. */
function isEmpty(result) {
  const tiles = (result.tiles ?? []).every((t) => !t.value);
  const charts = (result.charts ?? []).every((c) => c.rows.every((r) => r.slice(1).every((v) => typeof v !== 'number' || v === 0)));
  return tiles && charts;
}
