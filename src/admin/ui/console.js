// The operator console: a client of the gateway's admin API and nothing else. Every value that comes from
// the API reaches the page through textContent or setAttribute, never innerHTML, so that a team or key name
// is shown as text whatever it contains.

const TOKEN_KEY = 'grok-gateway.admin-token';
// The page is /admin/ui, so './' is /admin/: relative, so that the console also works behind a path prefix.
const API_BASE = new URL('./', location.href);
const CONCURRENT_USAGE_CALLS = 4;
/** The team view's list of videos: the newest, as many as a glance takes in. */
const RECENT_VIDEOS = 20;
const REVOKE_CONFIRM_MS = 5000;

/** The quota policy's numeric fields (gateway.md §4); `models` is the comma-separated allow-list beside them. */
const POLICY_FIELDS = [
  { name: 'requests_per_minute', label: 'Requests per minute', min: 0 },
  { name: 'max_concurrent_jobs', label: 'Concurrent jobs', min: 0 },
  { name: 'video_seconds_per_day', label: 'Video-seconds per day (UTC)', min: 0 },
  { name: 'video_seconds_per_month', label: 'Video-seconds per month (UTC)', min: 0 },
  { name: 'max_seconds_per_video', label: 'Seconds per video, at most', min: 1 },
  { name: 'usd_per_day', label: 'US dollars per day (UTC)', min: 0, step: 'any' },
  { name: 'usd_per_month', label: 'US dollars per month (UTC)', min: 0, step: 'any' },
  { name: 'video_retention_days', label: 'Days videos are kept', min: 1, placeholder: 'VIDEO_RETENTION_DAYS' },
];

const $ = (selector) => document.querySelector(selector);

class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Whether GET /admin/upstreams answered 404 once: a gateway without it is not asked again until reload. */
let upstreamsAbsent = false;

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(new URL(path, API_BASE), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data?.error?.message ?? `HTTP ${res.status}`, data?.error?.code);
  return data;
}

const teamPath = (id, rest = '') => `teams/${encodeURIComponent(id)}${rest}`;

/** Builds an element; strings among the children become text nodes (Element.append), never markup. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  node.append(...children.flat().filter((c) => c !== undefined && c !== null));
  return node;
}

function say(text, kind = 'ok') {
  const status = $('#status');
  status.textContent = text;
  status.className = kind;
}

function fail(err) {
  if (err instanceof ApiError && err.status === 401) return signOut('The admin token was refused: sign in again.');
  if (err instanceof ApiError) return say(`${err.message} (HTTP ${err.status}${err.code ? `, ${err.code}` : ''})`, 'error');
  return say(`Error: ${err.message}`, 'error');
}

/** An event listener that keeps forms from submitting and turns every failure into the status line. */
const handle = (fn) => async (event) => {
  event.preventDefault();
  try {
    await fn(event);
  } catch (err) {
    fail(err);
  }
};

const formatTime = (unixSeconds) => (unixSeconds ? `${new Date(unixSeconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC` : '—');
const againstLimit = (used, limit, unit = '') => `${used}${unit} / ${limit === undefined ? 'no limit' : `${limit}${unit}`}`;
/** Dollars as the usage answer has them (to the micro-dollar): cents always, more decimals only where there are any. */
const usd = (amount) => amount.toLocaleString('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 6 });
const bytes = (n) => (n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(2)} GiB`);
const spentAgainst = (used, budget) => `${usd(used)} / ${budget === undefined ? 'no limit' : usd(budget)}`;

/** A budget bar; nothing when the budget is unlimited. */
function meter(used, limit) {
  if (limit === undefined) return null;
  return el('meter', { min: 0, max: Math.max(limit, 1), value: Math.min(used, Math.max(limit, 1)), low: limit * 0.5, high: limit * 0.8, optimum: 0 });
}

// --- session -------------------------------------------------------------------------------------------

function showConsole() {
  $('#sign-in-view').hidden = true;
  $('#console-view').hidden = false;
  $('#session').hidden = false;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  // Nothing the previous session saw stays on the page.
  $('#teams tbody').replaceChildren();
  hideTeam();
  $('#upstreams-view').hidden = true;
  $('#storage').replaceChildren();
  $('#console-view').hidden = true;
  $('#session').hidden = true;
  $('#sign-in-view').hidden = false;
  say(message, message.includes('refused') ? 'error' : 'ok');
  $('#token').focus();
}

async function signIn(event) {
  const form = event.target;
  sessionStorage.setItem(TOKEN_KEY, new FormData(form).get('token').trim());
  await api('GET', 'teams'); // a refused token signs out again in fail()
  form.reset();
  showConsole();
  await refresh();
  say('Signed in.');
}

// --- teams ---------------------------------------------------------------------------------------------

function selectedTeam() {
  const match = /^#team=(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : undefined;
}

function selectTeam(id) {
  location.hash = `team=${encodeURIComponent(id)}`; // hashchange loads it
}

async function refresh() {
  const teams = (await api('GET', 'teams')).data;
  renderTeams(teams);
  const selected = selectedTeam();
  await Promise.all([loadUsages(teams), selected && teams.some((t) => t.id === selected) ? loadTeam(selected) : hideTeam(), loadTracking(), loadUpstreams(), loadStorage()]);
}

function renderTeams(teams) {
  const selected = selectedTeam();
  const rows = teams.map((team) => {
    const open = el('button', { type: 'button', class: 'link' }, team.id);
    open.addEventListener('click', () => selectTeam(team.id));
    return el(
      'tr',
      { 'data-team': team.id, class: team.id === selected ? 'selected' : null },
      el('td', {}, open),
      el('td', {}, team.name ?? ''),
      el('td', { class: 'num', 'data-usage': 'day' }, '…'),
      el('td', { class: 'num', 'data-usage': 'month' }, '…'),
      el('td', { class: 'num', 'data-usage': 'usd-day' }, '…'),
      el('td', { class: 'num', 'data-usage': 'usd-month' }, '…'),
      el('td', { class: 'num', 'data-usage': 'jobs' }, '…'),
      el('td', { class: 'num', 'data-usage': 'minute' }, '…'),
    );
  });
  $('#teams tbody').replaceChildren(...rows);
  $('#teams-empty').hidden = teams.length > 0;
}

/** Each team's usage, a few calls at a time, filled into its row as it arrives. */
async function loadUsages(teams) {
  const queue = [...teams];
  const worker = async () => {
    for (let team = queue.shift(); team; team = queue.shift()) {
      const row = [...$('#teams tbody').rows].find((r) => r.dataset.team === team.id);
      let usage;
      try {
        usage = await api('GET', teamPath(team.id, '/usage'));
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      }
      if (row) fillUsageRow(row, usage);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT_USAGE_CALLS, queue.length) }, worker));
}

function fillUsageRow(row, usage) {
  const cell = (name) => row.querySelector(`[data-usage="${name}"]`);
  if (!usage) {
    for (const name of ['day', 'month', 'usd-day', 'usd-month', 'jobs', 'minute']) cell(name).textContent = '—';
    return;
  }
  const q = usage.quota;
  cell('day').replaceChildren(...[meter(usage.day.video_seconds, q.video_seconds_per_day), againstLimit(usage.day.video_seconds, q.video_seconds_per_day, ' s')].filter(Boolean));
  cell('month').replaceChildren(...[meter(usage.month.video_seconds, q.video_seconds_per_month), againstLimit(usage.month.video_seconds, q.video_seconds_per_month, ' s')].filter(Boolean));
  cell('usd-day').replaceChildren(...[meter(usage.day.usd, q.usd_per_day), spentAgainst(usage.day.usd, q.usd_per_day)].filter(Boolean));
  cell('usd-month').replaceChildren(...[meter(usage.month.usd, q.usd_per_month), spentAgainst(usage.month.usd, q.usd_per_month)].filter(Boolean));
  cell('jobs').textContent = againstLimit(usage.active_jobs, q.max_concurrent_jobs);
  cell('minute').textContent = againstLimit(usage.requests_this_minute, q.requests_per_minute);
}

async function createTeam(event) {
  const form = event.target;
  const data = new FormData(form);
  const id = data.get('id').trim();
  const name = data.get('name').trim();
  await api('POST', 'teams', { id, ...(name ? { name } : {}), quota: readPolicy(form) });
  form.reset();
  say(`Team ${id} created.`);
  selectTeam(id);
}

// --- one team ------------------------------------------------------------------------------------------

function hideTeam() {
  $('#team-view').hidden = true;
  hideNewKey();
  hideWebhookSecret();
}

async function loadTeam(id) {
  let team, keys, usage, videos;
  try {
    [team, keys, usage, videos] = await Promise.all([
      api('GET', teamPath(id)),
      api('GET', teamPath(id, '/keys')),
      api('GET', teamPath(id, '/usage?days=30&by=model')),
      api('GET', teamPath(id, `/videos?limit=${RECENT_VIDEOS}`)),
    ]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      hideTeam();
      return say(`No team ${id}.`, 'error');
    }
    throw err;
  }
  $('#team-title').textContent = team.id;
  $('#team-name').textContent = team.name ?? '';
  renderUsage(usage);
  renderVideos(videos.data);
  renderKeys(keys.data);
  fillPolicy($('#policy-form'), team);
  await loadWebhook(id);
  $('#team-view').hidden = false;
}

function renderUsage(u) {
  const q = u.quota;
  const entries = [
    ['day', `Today (${u.day.start})`, [meter(u.day.video_seconds, q.video_seconds_per_day), againstLimit(u.day.video_seconds, q.video_seconds_per_day, ' s')]],
    ['day-reserved', 'of which held by running jobs', `${u.day.video_seconds_reserved} s`],
    ['month', `This month (${u.month.start})`, [meter(u.month.video_seconds, q.video_seconds_per_month), againstLimit(u.month.video_seconds, q.video_seconds_per_month, ' s')]],
    ['month-reserved', 'of which held by running jobs', `${u.month.video_seconds_reserved} s`],
    ['usd-day', 'Spent today', [meter(u.day.usd, q.usd_per_day), spentAgainst(u.day.usd, q.usd_per_day)]],
    ['usd-day-reserved', 'of which estimates of running jobs', usd(u.day.usd_reserved)],
    ['usd-month', 'Spent this month', [meter(u.month.usd, q.usd_per_month), spentAgainst(u.month.usd, q.usd_per_month)]],
    ['usd-month-reserved', 'of which estimates of running jobs', usd(u.month.usd_reserved)],
    ['requests', 'Requests today / this month', `${u.day.requests} / ${u.month.requests}`],
    ['jobs', 'Active jobs', againstLimit(u.active_jobs, q.max_concurrent_jobs)],
    ['minute', 'Requests this minute', againstLimit(u.requests_this_minute, q.requests_per_minute)],
  ];
  $('#usage').replaceChildren(...entries.flatMap(([key, label, value]) => [el('dt', {}, label), el('dd', { 'data-usage': key }, value)]));
  $('#chart').replaceChildren(dailyChart(u.daily ?? [], q.video_seconds_per_day));
  renderByModel(u.by_model ?? []);
}

/** This month's spend per model, as the usage answer breaks it down (`?by=model`). */
function renderByModel(models) {
  const rows = models.map((m) =>
    el(
      'tr',
      { 'data-model': m.model },
      el('td', {}, m.model),
      el('td', { class: 'num' }, usd(m.day.usd)),
      el('td', { class: 'num' }, usd(m.month.usd)),
      el('td', { class: 'num' }, `${m.month.video_seconds} s`),
      el('td', { class: 'num' }, String(m.month.jobs)),
    ),
  );
  $('#by-model tbody').replaceChildren(...rows);
  $('#by-model-empty').hidden = models.length > 0;
}

/** Bars of video-seconds per day, drawn as SVG elements (no library); the day budget as a dashed line. */
function dailyChart(daily, dayBudget) {
  const NS = 'http://www.w3.org/2000/svg';
  const svgEl = (tag, attrs, text) => {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const width = 640, height = 180, left = 44, bottom = 22, top = 10;
  const plotHeight = height - top - bottom;
  const scaleMax = Math.max(1, dayBudget ?? 0, ...daily.map((d) => d.video_seconds));
  const slot = (width - left) / Math.max(daily.length, 1);
  const y = (v) => top + plotHeight - (v / scaleMax) * plotHeight;
  const total = daily.reduce((sum, d) => sum + d.video_seconds, 0);
  const svg = svgEl('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Video-seconds per day over ${daily.length} days: ${total} in all` });
  svg.append(svgEl('line', { class: 'axis', x1: left, x2: width, y1: y(0), y2: y(0) }));
  svg.append(svgEl('text', { x: left - 6, y: y(scaleMax) + 4, 'text-anchor': 'end' }, `${scaleMax} s`));
  svg.append(svgEl('text', { x: left - 6, y: y(0), 'text-anchor': 'end' }, '0'));
  daily.forEach((d, i) => {
    const bar = svgEl('rect', { class: 'bar', x: left + i * slot + slot * 0.1, y: y(d.video_seconds), width: slot * 0.8, height: y(0) - y(d.video_seconds), 'data-date': d.date, 'data-seconds': d.video_seconds });
    bar.append(svgEl('title', {}, `${d.date}: ${d.video_seconds} video-seconds, ${d.requests} requests`));
    svg.append(bar);
  });
  if (daily.length) {
    svg.append(svgEl('text', { x: left, y: height - 6 }, daily[0].date));
    svg.append(svgEl('text', { x: width, y: height - 6, 'text-anchor': 'end' }, daily[daily.length - 1].date));
  }
  if (dayBudget !== undefined) {
    const line = svgEl('line', { class: 'budget', x1: left, x2: width, y1: y(dayBudget), y2: y(dayBudget) });
    line.append(svgEl('title', {}, `daily budget: ${dayBudget} s`));
    svg.append(line);
  }
  return svg;
}

/** A stored copy's state in a few words: where the video's content comes from now. */
function copyState(storage) {
  if (!storage) return '—';
  if (storage.state === 'stored') return `stored, ${bytes(storage.bytes ?? 0)}`;
  if (storage.state === 'pending') return storage.attempts ? `retrying (${storage.attempts} failed: ${storage.error ?? 'unknown'}), next ${formatTime(storage.next_attempt_at)}` : 'copy pending';
  if (storage.state === 'failed') return `copy failed: ${storage.error ?? 'unknown'}`;
  return 'removed';
}

function renderVideos(videos) {
  const now = Date.now() / 1000;
  const rows = videos.map((v) =>
    el(
      'tr',
      { 'data-video': v.id, 'data-storage': v.storage?.state ?? 'none' },
      el('td', {}, el('code', {}, v.id)),
      el('td', {}, v.model),
      el('td', {}, v.status),
      el('td', {}, formatTime(v.created_at)),
      el('td', { 'data-cell': 'storage' }, copyState(v.storage)),
      el('td', { 'data-cell': 'expires' }, v.expires_at === null ? '—' : `${formatTime(v.expires_at)}${v.expires_at <= now ? ' (expired)' : ''}`),
    ),
  );
  $('#videos tbody').replaceChildren(...rows);
  $('#videos-empty').hidden = videos.length > 0;
}

function renderKeys(keys) {
  const now = Date.now() / 1000;
  const rows = keys.map((key) => {
    const state = key.revoked_at ? `revoked ${formatTime(key.revoked_at)}` : key.expires_at && key.expires_at <= now ? 'expired' : 'active';
    return el(
      'tr',
      { 'data-key': key.id },
      el('td', {}, el('code', {}, key.id)),
      el('td', {}, key.name ?? ''),
      el('td', {}, el('code', {}, key.prefix)),
      el('td', {}, formatTime(key.created_at)),
      el('td', {}, key.expires_at ? formatTime(key.expires_at) : 'never'),
      el('td', {}, state),
      el('td', {}, state === 'active' ? revokeButton(key) : null),
    );
  });
  $('#keys tbody').replaceChildren(...rows);
  $('#keys-empty').hidden = keys.length > 0;
}

/** A destructive action takes two clicks (no modal dialog): the first arms the button for a few seconds. */
function armedButton(label, action) {
  const button = el('button', { type: 'button', class: 'danger' }, label);
  let disarm;
  button.addEventListener(
    'click',
    handle(async () => {
      if (!button.classList.contains('armed')) {
        button.classList.add('armed');
        button.textContent = `Confirm ${label.toLowerCase()}`;
        disarm = setTimeout(() => {
          button.classList.remove('armed');
          button.textContent = label;
        }, REVOKE_CONFIRM_MS);
        return;
      }
      clearTimeout(disarm);
      button.disabled = true;
      await action();
    }),
  );
  return button;
}

function revokeButton(key) {
  return armedButton('Revoke', async () => {
    await api('DELETE', `keys/${encodeURIComponent(key.id)}`);
    say(`Key ${key.id} revoked: the gateway refuses it from now on.`);
    await refresh();
  });
}

async function issueKey(event) {
  const form = event.target;
  const team = selectedTeam();
  const data = new FormData(form);
  const name = data.get('name').trim();
  const days = data.get('expires_days');
  const body = { ...(name ? { name } : {}), ...(days ? { expires_at: Math.floor(Date.now() / 1000) + Number(days) * 86_400 } : {}) };
  const issued = await api('POST', teamPath(team, '/keys'), body);
  form.reset();
  $('#new-key-secret').textContent = issued.key;
  $('#new-key').hidden = false;
  say(`Key ${issued.id} issued for team ${team}.`);
  await loadTeam(team);
}

function hideNewKey() {
  $('#new-key-secret').textContent = '';
  $('#new-key').hidden = true;
}

async function copyKey() {
  const secret = $('#new-key-secret');
  try {
    await navigator.clipboard.writeText(secret.textContent);
    say('Key copied to the clipboard.');
  } catch {
    // The browser refused the clipboard (permissions, insecure origin): select it for a manual copy.
    getSelection().selectAllChildren(secret);
    say('The browser did not allow copying: the key is selected, copy it with Ctrl+C / ⌘C.', 'error');
  }
}

// --- webhook ------------------------------------------------------------------------------------------

const WEBHOOK_EVENTS = ['video.completed', 'video.failed', 'budget.threshold'];
/** What a new endpoint is offered, as the API's default: the video events; budget alerts are asked for. */
const DEFAULT_WEBHOOK_EVENTS = ['video.completed', 'video.failed'];

async function loadWebhook(team) {
  const [endpoint, deliveries] = await Promise.all([
    api('GET', teamPath(team, '/webhook')).catch((err) => {
      if (err instanceof ApiError && err.code === 'webhook_not_found') return null;
      throw err;
    }),
    api('GET', teamPath(team, '/webhook/deliveries?limit=20')),
  ]);
  const form = $('#webhook-form');
  form.elements.url.value = endpoint?.url ?? '';
  for (const type of WEBHOOK_EVENTS) form.elements[type].checked = (endpoint?.events ?? DEFAULT_WEBHOOK_EVENTS).includes(type);
  form.elements.enabled.checked = endpoint?.enabled ?? true;
  $('#webhook-state').textContent = endpoint ? (endpoint.enabled ? '(enabled)' : '(disabled)') : '(none)';
  $('#rotate-webhook-secret').hidden = !endpoint;
  $('#delete-webhook').replaceChildren(...(endpoint ? [armedButton('Delete', () => deleteWebhook(team))] : []));
  renderDeliveries(team, deliveries.data);
}

function renderDeliveries(team, deliveries) {
  const rows = deliveries.map((d) =>
    el(
      'tr',
      { 'data-delivery': d.id },
      el('td', {}, el('code', {}, d.event_id)),
      el('td', {}, d.type),
      el('td', {}, d.video_id === null ? '—' : el('code', {}, d.video_id)),
      el('td', {}, d.status),
      el('td', { class: 'num' }, String(d.attempts)),
      el('td', {}, d.last_error ?? (d.last_status === null ? '—' : String(d.last_status))),
      el('td', {}, formatTime(d.next_attempt_at)),
      el('td', {}, formatTime(d.delivered_at)),
      el('td', {}, replayButton(team, d)),
    ),
  );
  $('#deliveries tbody').replaceChildren(...rows);
  $('#deliveries-empty').hidden = deliveries.length > 0;
}

function replayButton(team, delivery) {
  const button = el('button', { type: 'button' }, 'Replay');
  button.addEventListener(
    'click',
    handle(async () => {
      button.disabled = true;
      await api('POST', teamPath(team, `/webhook/deliveries/${encodeURIComponent(delivery.id)}/replay`));
      say(`Event ${delivery.event_id} will be sent again now.`);
      await loadWebhook(team);
    }),
  );
  return button;
}

function showWebhookSecret(secret) {
  $('#new-webhook-secret-value').textContent = secret;
  $('#new-webhook-secret').hidden = false;
}

function hideWebhookSecret() {
  $('#new-webhook-secret-value').textContent = '';
  $('#new-webhook-secret').hidden = true;
}

async function saveWebhook(event) {
  const form = event.target;
  const team = selectedTeam();
  const events = WEBHOOK_EVENTS.filter((type) => form.elements[type].checked);
  const saved = await api('PUT', teamPath(team, '/webhook'), { url: form.elements.url.value.trim(), events, enabled: form.elements.enabled.checked });
  if (saved.secret) showWebhookSecret(saved.secret);
  say(`Webhook of team ${team} saved.`);
  await loadWebhook(team);
}

async function rotateWebhookSecret() {
  const team = selectedTeam();
  const rotated = await api('POST', teamPath(team, '/webhook/rotate-secret'));
  showWebhookSecret(rotated.secret);
  say(`New signing secret for team ${team}; the old one keeps signing for 24 hours.`);
  await loadWebhook(team);
}

async function deleteWebhook(team) {
  await api('DELETE', teamPath(team, '/webhook'));
  hideWebhookSecret();
  say(`Webhook of team ${team} deleted.`);
  await loadWebhook(team);
}

// --- policies ------------------------------------------------------------------------------------------

function buildPolicyFields() {
  for (const fieldset of document.querySelectorAll('fieldset.policy')) {
    for (const f of POLICY_FIELDS) fieldset.append(el('label', {}, f.label, el('input', { name: f.name, type: 'number', min: f.min, step: f.step ?? 1, placeholder: f.placeholder ?? 'no limit' })));
    fieldset.append(el('label', {}, 'Models (comma-separated)', el('input', { name: 'models', placeholder: 'all models', spellcheck: 'false' })));
  }
}

function fillPolicy(form, team) {
  form.elements.name.value = team.name ?? '';
  for (const f of POLICY_FIELDS) form.elements[f.name].value = team.quota[f.name] ?? '';
  form.elements.models.value = (team.quota.models ?? []).join(', ');
}

/** The form's policy; an empty field is left out, which the API reads as unlimited. */
function readPolicy(form) {
  const policy = {};
  for (const f of POLICY_FIELDS) {
    const value = form.elements[f.name].value.trim();
    if (value !== '') policy[f.name] = Number(value);
  }
  const models = form.elements.models.value.split(',').map((m) => m.trim()).filter(Boolean);
  if (models.length) policy.models = models;
  return policy;
}

async function savePolicy(event) {
  const form = event.target;
  const team = selectedTeam();
  const name = form.elements.name.value.trim();
  await api('PATCH', teamPath(team), { name: name || null, quota: readPolicy(form) });
  say(`Policy of team ${team} saved.`);
  await refresh();
}

// --- tracking: the backlog of due checks and the latest ends (GET /admin/tracking) ---------------------------

async function loadTracking() {
  const t = await api('GET', 'tracking');
  const seconds = (s) => `${s.toFixed(1)} s`;
  const lag = t.recent_ends.notice_lag_seconds;
  $('#tracking-due').textContent = String(t.due_jobs);
  $('#tracking-overdue').textContent = t.overdue_seconds > 0 ? `${seconds(t.overdue_seconds)} late` : 'none late';
  $('#tracking-ends').textContent = String(t.recent_ends.jobs);
  $('#tracking-lag').textContent = lag ? `${seconds(lag.p50)} / ${seconds(lag.p95)} / ${seconds(lag.max)}` : '—';
  $('#tracking-checks').textContent = t.recent_ends.status_checks_per_job === null ? '—' : t.recent_ends.status_checks_per_job.toFixed(1);
}

// --- upstreams (shown only when the gateway has GET /admin/upstreams) -------------------------------------

async function loadUpstreams() {
  if (upstreamsAbsent) return;
  let body;
  try {
    body = await api('GET', 'upstreams');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    upstreamsAbsent = true;
    $('#upstreams-view').hidden = true;
    return;
  }
  const rows = Array.isArray(body?.data) ? body.data : [];
  // The shape is the other endpoint's to define: every field it gives is a column, nested values as JSON.
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const show = (v) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  $('#upstreams thead').replaceChildren(el('tr', {}, columns.map((c) => el('th', {}, c))));
  $('#upstreams tbody').replaceChildren(...rows.map((r) => el('tr', {}, columns.map((c) => el('td', {}, show(r[c]))))));
  $('#upstreams-view').hidden = false;
}

// --- stored results ----------------------------------------------------------------------------------

async function loadStorage() {
  const s = await api('GET', 'storage');
  const entries = [
    ['backend', 'Copies go to', s.backend === null ? 'nowhere (STORAGE_URL=none): content streams from the upstream' : s.backend === 'file' ? 'a directory' : 'an S3 bucket'],
    ['stored', 'Stored videos', `${s.stored_videos} (${bytes(s.stored_bytes)})`],
    ['pending', 'Copies pending', String(s.pending_copies)],
    ['failed', 'Copies failed for good', String(s.failed_copies)],
  ];
  $('#storage').replaceChildren(...entries.flatMap(([key, label, value]) => [el('dt', {}, label), el('dd', { 'data-storage': key }, value)]));
}

// --- start ---------------------------------------------------------------------------------------------

buildPolicyFields();
$('#sign-in-form').addEventListener('submit', handle(signIn));
$('#sign-out').addEventListener('click', () => signOut('Signed out.'));
$('#refresh').addEventListener(
  'click',
  handle(async () => {
    await refresh();
    say(`Refreshed at ${new Date().toISOString().slice(11, 19)} UTC.`);
  }),
);
$('#create-team-form').addEventListener('submit', handle(createTeam));
$('#policy-form').addEventListener('submit', handle(savePolicy));
$('#issue-key-form').addEventListener('submit', handle(issueKey));
$('#copy-key').addEventListener('click', handle(copyKey));
$('#dismiss-key').addEventListener('click', hideNewKey);
$('#webhook-form').addEventListener('submit', handle(saveWebhook));
$('#rotate-webhook-secret').addEventListener('click', handle(rotateWebhookSecret));
$('#dismiss-webhook-secret').addEventListener('click', hideWebhookSecret);
window.addEventListener('hashchange', () => {
  hideNewKey();
  hideWebhookSecret();
  refresh().catch(fail);
});

if (sessionStorage.getItem(TOKEN_KEY)) {
  showConsole();
  refresh().catch(fail);
} else {
  $('#sign-in-view').hidden = false;
}
