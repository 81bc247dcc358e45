// The console shell: hash routes (#/signin, #/projects, #/projects/<id>/<tab>), the sign-in form,
// the project list, and the project page with its dashboard and settings tabs. Pages are
// rebuilt from the API on every visit; a page that polls registers a cleanup run on leaving it.

import * as api from './api.js';
import { confirmDialog, errorBox, h, replace } from './dom.js';
import { DASHBOARDS, renderDashboard } from './dashboards.js';
import { renderEventStream } from './eventstream.js';
import { renderJobs } from './jobs.js';
import { renderHistoryImports } from './history.js';

const view = document.getElementById('view');
const sessionNav = document.getElementById('session');
let cleanups = [];
/** Shown once on the sign-in page: why the person was sent back there. */
let signInNotice = '';

api.onAuthFailure((err) => {
  api.clearSession();
  if (route().page === 'signin') return; // the sign-in form shows the error itself
  signInNotice = `Your access key was not accepted — ${String(err).replace(/\.$/, '')}. Sign in again.`;
  location.hash = '#/signin';
});

function route() {
  const [path, qs = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'signin') return { page: 'signin' };
  if (parts[0] === 'projects' && parts[1]) return { page: 'project', appId: parts[1], tab: parts[2] ?? 'overview', params: new URLSearchParams(qs) };
  return { page: 'projects' };
}

const projectHash = (appId, tab, params) => `#/projects/${encodeURIComponent(appId)}/${tab}${params && [...params].length ? '?' + params : ''}`;

async function render() {
  for (const fn of cleanups.splice(0)) fn();
  const r = route();
  const session = api.loadSession();
  renderSessionNav(session);
  if (!session && r.page !== 'signin') {
    location.hash = '#/signin';
    return;
  }
  if (r.page === 'signin') return renderSignIn();
  if (r.page === 'projects') return renderProjects();
  return renderProject(r);
}

function renderSessionNav(session) {
  if (!session) return replace(sessionNav);
  replace(
    sessionNav,
    h('span', { class: 'identity', title: session.arn }, session.arn || session.accessKeyId),
    h('span', { class: 'region' }, session.region),
    h('button', { type: 'button', class: 'link', onclick: () => { api.clearSession(); location.hash = '#/signin'; } }, 'Sign out'),
  );
}

// --- Sign-in -----------------------------------------------------------------------------------

async function renderSignIn() {
  const notice = signInNotice;
  signInNotice = '';
  const status = h('div', { class: 'status' }, notice ? h('div', { class: 'notice', role: 'status' }, notice) : null);
  const keyId = h('input', { name: 'accessKeyId', required: true, autocomplete: 'username', spellcheck: 'false', placeholder: 'AKIA…' });
  const secret = h('input', { name: 'secretAccessKey', type: 'password', required: true, autocomplete: 'current-password' });
  const region = h('input', { name: 'region', required: true, value: 'us-east-1' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card signin', onsubmit: (e) => signIn(e) },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'hint' }, 'Use an access key of this Pinstream server (the admin key is printed when the server first starts). ' +
      'The key stays in this browser tab; every request is signed here with AWS Signature Version 4.'),
    h('label', {}, 'Access key ID', keyId),
    h('label', {}, 'Secret access key', secret),
    h('label', {}, 'Region', region),
    status,
    h('div', { class: 'actions' }, submit),
  );
  replace(view, form);
  keyId.focus();
  api.serverConfig().then((c) => (region.value = c.region), () => {});

  async function signIn(e) {
    e.preventDefault();
    submit.disabled = true;
    replace(status, h('p', { class: 'loading' }, 'Checking the key…'));
    const session = { accessKeyId: keyId.value.trim(), secretAccessKey: secret.value.trim(), region: region.value.trim() };
    try {
      const who = await api.callerIdentity(session);
      api.saveSession({ ...session, arn: who.arn, accountId: who.account });
      location.hash = '#/projects';
    } catch (err) {
      replace(status, errorBox(err));
      submit.disabled = false;
    }
  }
}

// --- Projects ----------------------------------------------------------------------------------

async function renderProjects() {
  const list = h('div', { class: 'projects' }, h('p', { class: 'loading' }, 'Loading projects…'));
  const name = h('input', { name: 'projectName', required: true, maxlength: '64', placeholder: 'My app' });
  const createStatus = h('div', { class: 'status' });
  const create = h(
    'form',
    { class: 'inline', onsubmit: async (e) => {
      e.preventDefault();
      replace(createStatus, h('p', { class: 'loading' }, 'Creating…'));
      try {
        await api.pinpoint('POST', ['v1', 'apps'], { body: { Name: name.value.trim() } });
        name.value = '';
        replace(createStatus);
        await load();
      } catch (err) {
        replace(createStatus, errorBox(err));
      }
    } },
    h('label', {}, 'New project name', name),
    h('button', { type: 'submit', class: 'primary' }, 'Create project'),
  );
  replace(view, h('section', { class: 'card' }, h('h1', {}, 'Projects'), create, createStatus, list));

  async function load() {
    try {
      const apps = await api.listApps();
      if (apps.length === 0) {
        return replace(list, h('p', { class: 'empty' }, 'No projects yet. Create one above, then send events to it with PutEvents.'));
      }
      apps.sort((a, b) => a.Name.localeCompare(b.Name));
      replace(
        list,
        h('table', { class: 'data' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Project ID'), h('th', {}, 'Created'), h('th', {}))),
          h('tbody', {}, apps.map((app) =>
            h('tr', { dataset: { appId: app.Id } },
              h('td', {}, h('a', { href: projectHash(app.Id, 'overview') }, app.Name)),
              h('td', { class: 'mono' }, app.Id),
              h('td', {}, app.CreationDate ? new Date(app.CreationDate).toLocaleString() : '—'),
              h('td', { class: 'row-actions' }, h('button', { type: 'button', class: 'danger small', onclick: () => remove(app) }, 'Delete')),
            )))),
      );
    } catch (err) {
      replace(list, errorBox(err, h('button', { type: 'button', onclick: load }, 'Try again')));
    }
  }

  async function remove(app) {
    const ok = await confirmDialog({
      title: `Delete project ${app.Name}?`,
      message: `Project ${app.Id}, its endpoints and its event-stream settings are deleted. Events already delivered to streams stay there.`,
    });
    if (!ok) return;
    try {
      await api.pinpoint('DELETE', ['v1', 'apps', app.Id]);
      await load();
    } catch (err) {
      replace(createStatus, errorBox(err));
    }
  }

  await load();
}

// --- One project -------------------------------------------------------------------------------

async function renderProject(r) {
  replace(view, h('p', { class: 'loading' }, 'Loading project…'));
  let app;
  try {
    app = await api.pinpoint('GET', ['v1', 'apps', r.appId]);
  } catch (err) {
    return replace(view, errorBox(err, h('a', { href: '#/projects' }, 'Back to projects')));
  }
  const tabs = [...DASHBOARDS, ['settings', 'Settings · Event stream · Jobs · History']];
  const content = h('div', { class: 'tab-content' });
  const guest = h('div', { class: 'guest-access' });
  // One step: an identity pool whose guests may only PutEvents and UpdateEndpoint on this project.
  async function createGuestAccess() {
    replace(guest, h('p', { class: 'loading' }, 'Creating guest access…'));
    try {
      const out = await api.pinpoint('POST', ['v1', 'apps', app.Id, 'guest-access'], { body: {} });
      replace(guest,
        h('p', {}, `Identity pool ${out.IdentityPoolId}: guests may only send events and update endpoints of this project. An app needs:`),
        h('pre', { class: 'mono' }, JSON.stringify({ identityPoolId: out.IdentityPoolId, region: out.Region, appId: out.ApplicationId, endpoints: out.Endpoints }, null, 2)),
        h('p', {}, 'aws-exports.js (Amplify Gen 1):'),
        h('pre', { class: 'mono' }, JSON.stringify(out.AwsExports, null, 2)),
        h('p', {}, 'amplify_outputs.json (Amplify Gen 2):'),
        h('pre', { class: 'mono' }, JSON.stringify(out.AmplifyOutputs, null, 2)));
    } catch (err) {
      replace(guest, errorBox(err));
    }
  }
  replace(
    view,
    h('div', { class: 'project-head' },
      h('a', { href: '#/projects', class: 'back' }, '← Projects'),
      h('h1', {}, app.Name),
      h('span', { class: 'mono muted' }, app.Id),
      h('button', { type: 'button', class: 'small', onclick: createGuestAccess }, 'Guest access for apps')),
    guest,
    h('nav', { class: 'tabs', role: 'tablist' }, tabs.map(([id, label]) =>
      h('a', { href: projectHash(app.Id, id), role: 'tab', class: id === r.tab ? 'active' : undefined, 'aria-selected': String(id === r.tab), dataset: { tab: id } }, label))),
    content,
  );
  const ctx = {
    app,
    params: r.params,
    /** Records new query parameters in the URL without a full re-render (the tab redraws itself). */
    setParams: (params) => history.replaceState(null, '', projectHash(app.Id, r.tab, params)),
    onLeave: (fn) => cleanups.push(fn),
  };
  if (r.tab === 'settings') {
    const stream = h('div');
    const jobs = h('div');
    const imports = h('div');
    replace(content, stream, jobs, imports);
    return Promise.all([renderEventStream(stream, ctx), renderJobs(jobs, ctx), renderHistoryImports(imports, ctx)]);
  }
  return renderDashboard(content, { ...ctx, name: DASHBOARDS.some(([id]) => id === r.tab) ? r.tab : 'overview' });
}

window.addEventListener('hashchange', render);
render();
