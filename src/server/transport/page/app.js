// chatnode's chat page: a small IRC client over WebSocket (IRCv3 text.ircv3.net), no framework.
// One WebSocket to the listener that served this page; one "buffer" per channel or conversation,
// plus the server's own. Reconnects by itself (1, 2, 4 ... 15 s) and rejoins its channels.
// Scroll-back: where the node keeps history (IRCv3 draft/chathistory, CHATHISTORY= in ISUPPORT)
// the page fetches a channel's latest messages when it joins, and older ones when the reader
// scrolls to the top (or presses "Earlier messages"); lines are told apart by their msgid, so a
// message seen live and again in history shows once.
'use strict';

const $ = (id) => document.getElementById(id);
const SERVER = '*server*';
const MAX_LINES = 2000;      // scroll-back kept per buffer
const MAX_TEXT = 400;        // bytes of text per PRIVMSG; longer input is split
const HISTORY_PAGE = 50;     // messages per CHATHISTORY request (at most the node's CHATHISTORY=)
// Capabilities the page asks for, when the node offers them: history needs the first two,
// msgid (message-tags) tells history from live lines, and echo-message gives our own lines
// their msgid and the node's time.
const WANTED_CAPS = ['batch', 'draft/chathistory', 'echo-message', 'message-tags', 'server-time'];

const state = {
  ws: null, nick: '', registered: false, quitting: false, retry: 0, timer: null,
  wanted: [],                 // channels to (re)join after registration
  buffers: new Map(),         // folded name -> buffer
  current: SERVER,
  offered: new Set(), caps: new Set(), historyMax: 0,  // per connection: CAP LS, CAP ACK, ISUPPORT
  batches: new Map(),         // open BATCH reference -> { type, target, messages }
};

const fold = (name) => name.toLowerCase().replace(/\[/g, '{').replace(/\]/g, '}').replace(/\\/g, '|').replace(/~/g, '^');
const isChannel = (name) => /^[#&]/.test(name);

// ---- IRC lines ----------------------------------------------------------------------------

function parse(line) {
  const msg = { tags: {}, prefix: '', nick: '', command: '', params: [] };
  let rest = line;
  if (rest[0] === '@') {
    const sp = rest.indexOf(' ');
    for (const kv of rest.slice(1, sp).split(';')) {
      const eq = kv.indexOf('=');
      if (eq < 0) msg.tags[kv] = ''; else msg.tags[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    rest = rest.slice(sp + 1).replace(/^ +/, '');
  }
  if (rest[0] === ':') {
    const sp = rest.indexOf(' ');
    msg.prefix = rest.slice(1, sp);
    msg.nick = msg.prefix.split('!')[0];
    rest = rest.slice(sp + 1).replace(/^ +/, '');
  }
  while (rest.length) {
    if (rest[0] === ':') { msg.params.push(rest.slice(1)); break; }
    const sp = rest.indexOf(' ');
    if (sp < 0) { msg.params.push(rest); break; }
    msg.params.push(rest.slice(0, sp));
    rest = rest.slice(sp + 1).replace(/^ +/, '');
  }
  msg.command = (msg.params.shift() || '').toUpperCase();
  return msg;
}

function send(line) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(line);
}

// ---- buffers and rendering ----------------------------------------------------------------

function buffer(name, kind) {
  const key = name === SERVER ? SERVER : fold(name);
  let b = state.buffers.get(key);
  if (!b) {
    b = { key, name, kind: kind || (isChannel(name) ? 'channel' : 'query'), lines: [], topic: '',
          members: new Map(), names: null, unread: 0, joined: false,
          ids: new Set(),         // msgids of the lines held, so history adds no duplicates
          loading: null,          // 'latest' or 'older' while a CHATHISTORY request is out
          exhausted: false };     // the node has nothing older
    state.buffers.set(key, b);
    renderBuffers();
  }
  return b;
}

function timeOf(msg) {
  const t = msg && msg.tags && msg.tags.time ? new Date(msg.tags.time) : new Date();
  return isNaN(t) ? new Date() : t;
}

function makeLine(kind, who, text, msg, mine) {
  const msgid = msg && msg.tags && msg.tags.msgid ? msg.tags.msgid : '';
  return { kind, who, text, time: timeOf(msg), mine: !!mine, msgid };
}

// Drops the oldest lines past MAX_LINES (they can be fetched again from history).
function trim(b) {
  if (b.lines.length <= MAX_LINES) return;
  for (const old of b.lines.splice(0, b.lines.length - MAX_LINES)) b.ids.delete(old.msgid);
  b.exhausted = false;
}

// Adds a line to a buffer: kind is 'msg', 'action', 'notice', 'event' or 'error'.
function addLine(b, kind, who, text, msg, mine) {
  const line = makeLine(kind, who, text, msg, mine);
  if (line.msgid) {
    if (b.ids.has(line.msgid)) return;
    b.ids.add(line.msgid);
  }
  b.lines.push(line);
  trim(b);
  if (b.key === state.current) {
    const log = $('log');
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(lineElement(line));
    while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
    if (atBottom || mine) log.scrollTop = log.scrollHeight;
  } else if (kind !== 'event') {
    b.unread++;
    renderBuffers();
  }
}

function color(nick) {
  let h = 0;
  for (const c of fold(nick)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360} 55% 45%)`;
}

function lineElement(line) {
  const div = document.createElement('div');
  div.className = `msg ${line.kind}${line.mine ? ' mine' : ''}`;
  const time = document.createElement('time');
  time.dateTime = line.time.toISOString();
  time.textContent = line.time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  time.title = line.time.toLocaleString();
  div.append(time);
  if (line.who) {
    const who = document.createElement('span');
    who.className = 'who';
    who.style.color = color(line.who);
    who.textContent = line.kind === 'action' ? `* ${line.who}` : line.kind === 'notice' ? `-${line.who}-` : line.who;
    div.append(who);
  }
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = line.text;
  div.append(text);
  return div;
}

function renderBuffers() {
  const list = $('buffer-list');
  list.replaceChildren();
  let unread = 0;
  for (const b of state.buffers.values()) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = b.key === SERVER ? 'Server' : b.name;
    if (b.key === state.current) button.setAttribute('aria-current', 'true');
    if (b.unread) {
      const badge = document.createElement('span');
      badge.className = 'unread';
      badge.textContent = b.unread;
      badge.setAttribute('aria-label', `${b.unread} unread`);
      button.append(badge);
      unread += b.unread;
    }
    button.addEventListener('click', () => select(b.key));
    li.append(button);
    list.append(li);
  }
  document.title = unread ? `(${unread}) chatnode` : 'chatnode';
}

function renderMembers() {
  const b = state.buffers.get(state.current);
  const pane = $('members');
  pane.replaceChildren();
  const show = b && b.kind === 'channel';
  $('toggle-members').hidden = !show;
  $('members-pane').hidden = !show;
  if (!show) return;
  const rank = (m) => (m.prefix === '@' ? 0 : m.prefix === '+' ? 1 : 2);
  const members = [...b.members.values()].sort((x, y) => rank(x) - rank(y) || fold(x.nick).localeCompare(fold(y.nick)));
  $('member-count').textContent = `People (${members.length})`;
  for (const m of members) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = m.prefix + m.nick;
    button.style.color = color(m.nick);
    button.title = `Private conversation with ${m.nick}`;
    button.addEventListener('click', () => { if (fold(m.nick) !== fold(state.nick)) select(buffer(m.nick).key); });
    li.append(button);
    pane.append(li);
  }
}

function renderHeader() {
  const b = state.buffers.get(state.current);
  $('buffer-name').textContent = !b || b.key === SERVER ? 'Server' : b.name;
  $('topic').textContent = b && b.topic ? b.topic : '';
  $('topic').title = b && b.topic ? b.topic : '';
}

function select(key) {
  const b = state.buffers.get(key);
  if (!b) return;
  state.current = key;
  b.unread = 0;
  const log = $('log');
  log.replaceChildren(...b.lines.map(lineElement));
  log.scrollTop = log.scrollHeight;
  renderOlder();
  renderBuffers();
  renderHeader();
  renderMembers();
  $('buffers').classList.remove('open');
  $('members-pane').classList.remove('open');
  $('input').focus();
}

function setStatus(text, down) {
  $('status').textContent = text;
  $('status').classList.toggle('down', !!down);
}

// ---- scroll-back (CHATHISTORY) -----------------------------------------------------------

const historyPage = () => Math.min(HISTORY_PAGE, state.historyMax);
const historyOn = () => state.caps.has('draft/chathistory') && state.caps.has('batch') && state.historyMax > 0;

// Asks the node for a buffer's latest messages, or for the page before its oldest line.
function fetchHistory(b, older) {
  if (!b || b.key === SERVER || !historyOn() || b.loading) return;
  let ref = '*';
  if (older) {
    const oldest = b.lines.find((l) => l.msgid);
    if (!oldest || b.exhausted || b.lines.length >= MAX_LINES) return;
    ref = `msgid=${oldest.msgid}`;
  }
  b.loading = older ? 'older' : 'latest';
  send(`CHATHISTORY ${older ? 'BEFORE' : 'LATEST'} ${b.name} ${ref} ${historyPage()}`);
  renderOlder();
}

// The "Earlier messages" button: shown while the current buffer may have more history.
function renderOlder() {
  const b = state.buffers.get(state.current);
  const button = $('older');
  button.hidden = !(b && b.key !== SERVER && historyOn() && !b.exhausted && b.lines.some((l) => l.msgid));
  button.disabled = !!(b && b.loading);
  button.dataset.loading = button.disabled ? '1' : '';  // for tests: a request is out
  button.textContent = b && b.loading ? 'Loading…' : 'Earlier messages';
}

// A chathistory batch ended: merge its messages into the buffer, in time order, once each.
function historyArrived(batch) {
  if (!batch.target) return;
  const b = buffer(batch.target);
  const older = b.loading === 'older';
  b.loading = null;
  const lines = [];
  for (const m of batch.messages) {
    if (m.command !== 'PRIVMSG' && m.command !== 'NOTICE') continue;
    const c = classify(m, m.command === 'PRIVMSG' ? 'msg' : 'notice');
    if (!c || c.b !== b) continue;
    const line = makeLine(c.kind, c.who, c.text, m, c.mine);
    if (line.msgid && b.ids.has(line.msgid)) continue;
    if (line.msgid) b.ids.add(line.msgid);
    lines.push(line);
  }
  // A short page means the node has nothing older; so does an older page with nothing new.
  if (batch.messages.length < historyPage() || (older && lines.length === 0)) b.exhausted = true;
  if (lines.length) {
    b.lines = [...lines, ...b.lines].sort((x, y) => x.time - y.time); // stable: ties keep order
    if (!older) trim(b);
  }
  if (b.key !== state.current) return renderOlder();
  const log = $('log');
  const fromBottom = log.scrollHeight - log.scrollTop;
  const atBottom = fromBottom - log.clientHeight < 40;
  log.replaceChildren(...b.lines.map(lineElement));
  // Reading older lines: keep what was on screen where it was. Otherwise stay at the bottom.
  log.scrollTop = older || !atBottom ? log.scrollHeight - fromBottom : log.scrollHeight;
  renderOlder();
}

// ---- what the server says -----------------------------------------------------------------

const isMe = (nick) => fold(nick) === fold(state.nick);
const server = () => buffer(SERVER, 'server');

const handlers = {
  PING: (m) => send(`PONG :${m.params[0] || ''}`),
  CAP: (m) => {
    const sub = (m.params[1] || '').toUpperCase();
    if (sub === 'LS') {
      const more = m.params[2] === '*';
      for (const cap of (m.params[more ? 3 : 2] || '').split(' ')) if (cap) state.offered.add(cap.split('=')[0]);
      if (more) return;
      const want = WANTED_CAPS.filter((cap) => state.offered.has(cap));
      send(want.length ? `CAP REQ :${want.join(' ')}` : 'CAP END');
    } else if (sub === 'ACK') {
      for (const cap of (m.params[2] || '').split(' ')) if (cap && cap[0] !== '-') state.caps.add(cap);
      if (!state.registered) send('CAP END');
    } else if (sub === 'NAK' && !state.registered) {
      send('CAP END');
    }
  },
  '005': (m) => {
    for (const token of m.params.slice(1, -1)) {
      if (token.startsWith('CHATHISTORY=')) state.historyMax = Number(token.slice(12)) || 0;
    }
    addLine(server(), 'event', '', m.params.slice(1).join(' '), m);
  },
  BATCH: (m) => {
    const ref = m.params[0] || '';
    if (ref[0] === '+') {
      state.batches.set(ref.slice(1), { type: m.params[1], target: m.params[2], messages: [] });
    } else if (ref[0] === '-') {
      const batch = state.batches.get(ref.slice(1));
      state.batches.delete(ref.slice(1));
      if (batch && batch.type === 'chathistory') historyArrived(batch);
    }
  },
  FAIL: (m) => {
    if (m.params[0] === 'CHATHISTORY') {
      for (const b of state.buffers.values()) b.loading = null;
      renderOlder();
    }
    addLine(current(), 'error', '', m.params[m.params.length - 1] || 'Failed', m);
  },
  '001': (m) => {
    state.nick = m.params[0];
    state.registered = true;
    state.retry = 0;
    setStatus(`${state.nick}`);
    localStorage.setItem('chatnode.nick', state.nick);
    addLine(server(), 'event', '', m.params[1] || 'Welcome', m);
    if (state.wanted.length) send(`JOIN ${state.wanted.join(',')}`);
  },
  '433': (m) => {
    if (state.registered) return addLine(current(), 'error', '', `${m.params[1]}: nickname in use`, m);
    state.nick = `${state.nick.slice(0, 28)}_`;
    send(`NICK ${state.nick}`);
  },
  '432': (m) => {
    if (state.registered) return addLine(current(), 'error', '', `${m.params[1]}: ${m.params[2] || 'invalid nickname'}`, m);
    stop(`"${m.params[1]}" cannot be used as a nickname.`);
  },
  JOIN: (m) => {
    const b = buffer(m.params[0], 'channel');
    if (isMe(m.nick)) {
      b.joined = true;
      b.members.clear();
      addLine(b, 'event', '', `You joined ${b.name}`, m);
      if (state.current === SERVER || state.pendingSelect === b.key) { state.pendingSelect = null; select(b.key); }
      fetchHistory(b, false);
    } else {
      b.members.set(fold(m.nick), { nick: m.nick, prefix: '' });
      addLine(b, 'event', '', `→ ${m.nick} joined`, m);
    }
    if (b.key === state.current) renderMembers();
  },
  PART: (m) => {
    const b = buffer(m.params[0], 'channel');
    const why = m.params[1] ? ` (${m.params[1]})` : '';
    if (isMe(m.nick)) {
      b.joined = false;
      b.members.clear();
      addLine(b, 'event', '', `You left ${b.name}${why}`, m);
    } else {
      b.members.delete(fold(m.nick));
      addLine(b, 'event', '', `← ${m.nick} left${why}`, m);
    }
    if (b.key === state.current) renderMembers();
  },
  KICK: (m) => {
    const b = buffer(m.params[0], 'channel');
    const who = m.params[1];
    b.members.delete(fold(who));
    if (isMe(who)) b.joined = false;
    addLine(b, 'event', '', `← ${who} was removed by ${m.nick} (${m.params[2] || ''})`, m);
    if (b.key === state.current) renderMembers();
  },
  QUIT: (m) => {
    for (const b of state.buffers.values()) {
      if (b.members.delete(fold(m.nick))) addLine(b, 'event', '', `← ${m.nick} quit (${m.params[0] || ''})`, m);
    }
    renderMembers();
  },
  NICK: (m) => {
    const to = m.params[0];
    if (isMe(m.nick)) { state.nick = to; setStatus(to); localStorage.setItem('chatnode.nick', to); }
    for (const b of state.buffers.values()) {
      const member = b.members.get(fold(m.nick));
      if (!member) continue;
      b.members.delete(fold(m.nick));
      b.members.set(fold(to), { nick: to, prefix: member.prefix });
      addLine(b, 'event', '', `${m.nick} is now ${to}`, m);
    }
    renderMembers();
  },
  PRIVMSG: (m) => message(m, 'msg'),
  NOTICE: (m) => message(m, 'notice'),
  TOPIC: (m) => {
    const b = buffer(m.params[0], 'channel');
    b.topic = m.params[1] || '';
    addLine(b, 'event', '', `${m.nick} set the topic: ${b.topic}`, m);
    if (b.key === state.current) renderHeader();
  },
  '332': (m) => {
    const b = buffer(m.params[1], 'channel');
    b.topic = m.params[2] || '';
    addLine(b, 'event', '', `Topic: ${b.topic}`, m);
    if (b.key === state.current) renderHeader();
  },
  '331': () => {},
  '333': () => {},
  '353': (m) => {
    const b = buffer(m.params[2], 'channel');
    if (!b.names) b.names = new Map();
    for (const entry of (m.params[3] || '').split(' ').filter(Boolean)) {
      const prefix = /^[@+%~&]/.test(entry) ? entry[0] : '';
      const nick = prefix ? entry.slice(1) : entry;
      b.names.set(fold(nick), { nick, prefix });
    }
  },
  '366': (m) => {
    const b = buffer(m.params[1], 'channel');
    if (b.names) { b.members = b.names; b.names = null; }
    if (b.key === state.current) renderMembers();
  },
  MODE: (m) => {
    if (!isChannel(m.params[0])) return;
    const b = buffer(m.params[0], 'channel');
    addLine(b, 'event', '', `${m.nick} sets mode ${m.params.slice(1).join(' ')}`, m);
    send(`NAMES ${b.name}`); // simplest way to refresh the @ and + prefixes
  },
  ERROR: (m) => addLine(server(), 'error', '', m.params[0] || 'Error', m),
};

function current() {
  return state.buffers.get(state.current) || server();
}

// Where a PRIVMSG or NOTICE goes and how it shows; null for CTCP requests other than ACTION.
function classify(m, kind) {
  const [target, raw = ''] = m.params;
  let text = raw;
  if (text.startsWith('\x01')) {
    const ctcp = text.slice(1).replace(/\x01$/, '');
    if (!ctcp.startsWith('ACTION ')) return null; // other CTCP requests are not answered
    kind = 'action';
    text = ctcp.slice(7);
  }
  let b;
  if (isChannel(target)) b = buffer(target, 'channel');
  else if (!m.prefix.includes('!') || !state.registered) b = server();
  else b = buffer(isMe(m.nick) ? target : m.nick, 'query');
  return { b, kind, who: m.nick || m.prefix, text, mine: !!m.nick && isMe(m.nick) };
}

function message(m, kind) {
  const c = classify(m, kind);
  if (c) addLine(c.b, c.kind, c.who, c.text, m, c.mine);
}

function onLine(line) {
  const m = parse(line);
  const batch = m.tags.batch && state.batches.get(m.tags.batch);
  if (batch) return batch.messages.push(m); // shown when the batch ends
  const handler = handlers[m.command];
  if (handler) return handler(m);
  if (/^\d{3}$/.test(m.command)) {
    const code = Number(m.command);
    const text = m.params.slice(1).join(' ');
    addLine(code >= 400 ? current() : server(), code >= 400 ? 'error' : 'event', '', text, m);
  }
}

// ---- what the user types ------------------------------------------------------------------

function say(target, text, action) {
  const b = buffer(target);
  for (let i = 0; i < text.length; i += MAX_TEXT) {
    const part = text.slice(i, i + MAX_TEXT);
    send(`PRIVMSG ${target} :${action ? `\x01ACTION ${part}\x01` : part}`);
    // With echo-message the node sends the line back, with its msgid and time.
    if (!state.caps.has('echo-message')) addLine(b, action ? 'action' : 'msg', state.nick, part, null, true);
  }
}

function open(name) {
  name = name.trim();
  if (!name) return;
  if (isChannel(name)) { state.pendingSelect = fold(name); send(`JOIN ${name}`); }
  else select(buffer(name, 'query').key);
}

function command(input) {
  const b = current();
  if (!input.startsWith('/') || input.startsWith('//')) {
    const text = input.startsWith('//') ? input.slice(1) : input;
    if (b.key === SERVER) return addLine(b, 'error', '', 'Open a channel first (/join #channel).');
    return say(b.name, text);
  }
  const [cmd, ...args] = input.slice(1).split(' ');
  const rest = args.join(' ');
  switch (cmd.toLowerCase()) {
    case 'join': case 'j': return args[0] && open(args[0]);
    case 'part': case 'leave': {
      const chan = args[0] && isChannel(args[0]) ? args.shift() : b.name;
      return send(`PART ${chan}${args.length ? ` :${args.join(' ')}` : ''}`);
    }
    case 'msg': case 'query': {
      const [target, ...words] = args;
      if (!target) return;
      if (words.length) say(target, words.join(' '));
      return select(buffer(target).key);
    }
    case 'me': return b.key !== SERVER && say(b.name, rest, true);
    case 'nick': return args[0] && send(`NICK ${args[0]}`);
    case 'topic': return b.kind === 'channel' && send(rest ? `TOPIC ${b.name} :${rest}` : `TOPIC ${b.name}`);
    case 'quit': state.quitting = true; send(`QUIT :${rest || 'Bye'}`); return;
    case 'quote': case 'raw': return send(rest);
    default: return addLine(b, 'error', '', `Unknown command /${cmd}`);
  }
}

// ---- the connection -----------------------------------------------------------------------

function connect() {
  clearTimeout(state.timer);
  state.registered = false;
  state.offered = new Set();
  state.caps = new Set();
  state.historyMax = 0;
  state.batches = new Map();
  setStatus('connecting…');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/`, ['text.ircv3.net']);
  state.ws = ws;
  ws.addEventListener('open', () => {
    send('CAP LS 302');
    send(`NICK ${state.nick}`);
    send(`USER ${state.nick.slice(0, 10)} 0 * :${state.nick} (web)`);
  });
  ws.addEventListener('message', (e) => {
    if (typeof e.data === 'string') onLine(e.data);
  });
  ws.addEventListener('close', () => {
    if (state.ws !== ws) return;
    state.ws = null;
    // Rejoin what was open, after reconnecting.
    state.wanted = [...state.buffers.values()].filter((b) => b.kind === 'channel' && b.joined).map((b) => b.name);
    if (state.wanted.length === 0) state.wanted = state.initial;
    for (const b of state.buffers.values()) {
      if (b.joined) addLine(b, 'error', '', 'Disconnected from the node.');
      b.joined = false;
      b.loading = null;
      b.members.clear();
    }
    renderMembers();
    if (state.quitting) return setStatus('disconnected', true);
    const delay = Math.min(15, 2 ** state.retry);
    state.retry++;
    setStatus(`offline, retrying in ${delay} s`, true);
    state.timer = setTimeout(connect, delay * 1000);
  });
}

function stop(why) {
  state.quitting = true;
  if (state.ws) state.ws.close();
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = why;
}

function start(nick, channels) {
  state.nick = nick;
  state.quitting = false;
  state.initial = channels.split(/[\s,]+/).filter(Boolean).map((c) => (isChannel(c) ? c : `#${c}`));
  state.wanted = state.initial;
  localStorage.setItem('chatnode.channels', channels);
  $('login').hidden = true;
  $('app').hidden = false;
  server();
  select(SERVER);
  connect();
}

document.addEventListener('DOMContentLoaded', () => {
  const params = new URLSearchParams(location.search);
  $('nick').value = params.get('nick') || localStorage.getItem('chatnode.nick') || '';
  $('channels').value = params.get('channels') || localStorage.getItem('chatnode.channels') || '#chat';
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    $('login-error').textContent = '';
    start($('nick').value.trim(), $('channels').value);
  });
  $('send-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('input');
    if (input.value.trim()) command(input.value);
    input.value = '';
  });
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    open($('join-name').value);
    $('join-name').value = '';
  });
  $('older').addEventListener('click', () => fetchHistory(current(), true));
  $('log').addEventListener('scroll', () => { if ($('log').scrollTop < 40) fetchHistory(current(), true); });
  $('toggle-buffers').addEventListener('click', () => $('buffers').classList.toggle('open'));
  $('toggle-members').addEventListener('click', () => $('members-pane').classList.toggle('open'));
  $('nick').focus();
});
