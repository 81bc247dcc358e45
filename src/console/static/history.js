// Settings → History imports: the project's history imports (src/history/, started with
// `pinstream history import`) with their progress — objects, records, what was skipped and why,
// the first malformed records — read again while one is running.

import * as api from './api.js';
import { errorBox, formatNumber, h, replace } from './dom.js';

/** How often the list is read again while an import runs. */
export const HISTORY_POLL_MS = 2000;

const RUNNING = new Set(['CREATED', 'INITIALIZING', 'PROCESSING']);

export async function renderHistoryImports(container, { app, onLeave }) {
  const card = h('section', { class: 'card', id: 'history-imports' });
  replace(container, h('h2', {}, 'History imports'), card);
  let timer;
  let left = false;
  onLeave(() => {
    left = true;
    clearTimeout(timer);
  });
  await show();

  async function show() {
    let jobs;
    try {
      jobs = (await api.pinpoint('GET', ['v1', 'apps', app.Id, 'history-imports'])).Item;
    } catch (err) {
      return replace(card, errorBox(err, h('button', { type: 'button', onclick: () => show() }, 'Try again')));
    }
    if (left) return;
    if (jobs.length === 0) {
      replace(card, h('p', {}, 'No history imports. Load the event history of the old pipeline with: ', h('code', {}, `pinstream history import --app ${app.Id} s3://bucket/prefix/`)));
    } else {
      replace(card, ...jobs.map(job));
    }
    if (jobs.some((j) => RUNNING.has(j.JobStatus))) timer = setTimeout(show, HISTORY_POLL_MS);
  }
}

function job(j) {
  const total = j.TotalObjects ?? 0;
  const pct = total > 0 ? Math.round((100 * j.CompletedObjects) / total) : 0;
  const rate = j.ProcessingMillis > 0 ? (j.TotalRecords * 1000) / j.ProcessingMillis : 0;
  const row = (label, value) => h('tr', {}, h('th', {}, label), h('td', {}, value));
  return h(
    'div',
    { class: 'history-import', 'data-job': j.Id },
    h('h3', {}, `${j.Source} — ${j.JobStatus}`),
    h('progress', { max: '100', value: String(pct), title: `${pct}%` }),
    h('p', {}, `${formatNumber(j.CompletedObjects)} of ${j.TotalObjects === undefined ? '?' : formatNumber(total)} objects · ${formatNumber(j.TotalRecords)} records · ${formatNumber(Math.round(rate))} records/s`),
    h(
      'table',
      {},
      row('Imported', formatNumber(j.ImportedRecords)),
      row('Already held', formatNumber(j.DuplicateRecords)),
      row('Older than retention', formatNumber(j.TooOldRecords)),
      row('Other projects', formatNumber(j.OtherAppRecords)),
      row('Malformed', formatNumber(j.MalformedRecords)),
      row('Started', j.CreationDate),
      ...(j.CompletionDate ? [row('Ended', j.CompletionDate)] : []),
    ),
    ...(j.FailureReason ? [h('p', { class: 'error' }, j.FailureReason)] : []),
    ...(j.Failures.length > 0 ? [h('details', {}, h('summary', {}, `Malformed records (first ${j.Failures.length})`), h('ul', {}, ...j.Failures.map((f) => h('li', {}, h('code', {}, f)))))] : []),
  );
}
