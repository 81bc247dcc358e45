// Settings → Endpoint import and export jobs: the project's jobs (GetImportJobs, GetExportJobs),
// newest first, each with its status, pieces, endpoints processed and failed, and its failure
// samples (the first ones Pinpoint keeps, each naming the object and line). Read again every
// JOBS_POLL_MS while a job is still running; jobs are started with the API, the AWS CLI or the SDK.

import * as api from './api.js';
import { errorBox, formatNumber, h, replace } from './dom.js';

/** How often the list is read again while a job runs. */
export const JOBS_POLL_MS = 2000;
/** Jobs of each kind shown (the newest). */
export const JOBS_SHOWN = 20;

const FINISHED = new Set(['COMPLETED', 'FAILED']);

export async function renderJobs(container, { app, onLeave }) {
  const section = h('section', { class: 'card', id: 'endpoint-jobs' });
  replace(container, h('h2', {}, 'Endpoint import and export jobs'), section);
  let timer;
  let left = false;
  onLeave(() => {
    left = true;
    clearTimeout(timer);
  });

  async function load() {
    try {
      const query = { 'page-size': String(JOBS_SHOWN) };
      const [imports, exports] = await Promise.all([
        api.pinpoint('GET', ['v1', 'apps', app.Id, 'jobs', 'import'], { query }),
        api.pinpoint('GET', ['v1', 'apps', app.Id, 'jobs', 'export'], { query }),
      ]);
      if (left) return;
      const jobs = [...(imports.Item ?? []), ...(exports.Item ?? [])].sort((a, b) => b.CreationDate.localeCompare(a.CreationDate));
      replace(section, jobs.length === 0 ? h('p', { class: 'empty' }, 'No import or export jobs yet. Start one with CreateImportJob or CreateExportJob (aws pinpoint create-import-job).') : table(jobs));
      if (jobs.some((j) => !FINISHED.has(j.JobStatus))) timer = setTimeout(load, JOBS_POLL_MS);
    } catch (err) {
      if (!left) replace(section, errorBox(err));
    }
  }
  replace(section, h('p', { class: 'loading' }, 'Loading jobs…'));
  await load();
}

function table(jobs) {
  return h(
    'table',
    { class: 'data jobs' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Status'), h('th', { class: 'num' }, 'Pieces'), h('th', { class: 'num' }, 'Processed'), h('th', { class: 'num' }, 'Failed'), h('th', {}, 'Created'))),
    h(
      'tbody',
      {},
      jobs.map((j) => [
        h(
          'tr',
          { dataset: { job: j.Id, status: j.JobStatus } },
          h('td', {}, `${j.Type === 'IMPORT' ? 'Import from ' + j.Definition.S3Url + ' (' + j.Definition.Format + ')' : 'Export to ' + j.Definition.S3UrlPrefix}`),
          h('td', { class: `status ${j.JobStatus.toLowerCase()}` }, j.JobStatus),
          h('td', { class: 'num' }, `${formatNumber(j.CompletedPieces)} / ${formatNumber(j.TotalPieces)}${j.FailedPieces ? ` (${formatNumber(j.FailedPieces)} failed)` : ''}`),
          h('td', { class: 'num' }, formatNumber(j.TotalProcessed)),
          h('td', { class: 'num' }, formatNumber(j.TotalFailures)),
          h('td', {}, j.CreationDate.replace('T', ' ').slice(0, 19)),
        ),
        j.Failures?.length
          ? h(
              'tr',
              { class: 'failures' },
              h('td', { colspan: 6 }, h('details', {}, h('summary', {}, `${j.TotalFailures} failure${j.TotalFailures === 1 ? '' : 's'}${j.TotalFailures > j.Failures.length ? ` (first ${j.Failures.length} shown)` : ''}`), h('ul', {}, j.Failures.map((f) => h('li', {}, f))))),
            )
          : null,
      ]),
    ),
  );
}
