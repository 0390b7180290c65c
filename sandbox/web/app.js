// Wenming sandbox web chat: play the users, talk to the real bot through the local sandbox.
//
// Data flow: the sandbox's user-side API is the only source of truth. Sending something
// renders the Message the server returns; everything else (the bot's replies, edits,
// deletions, callback answers) arrives through the long-poll /_sandbox/events loop. Every
// render is an idempotent upsert keyed by message_id, so history loads, POST responses and
// replayed events can overlap freely.

import { api } from "./api.js";
import { renderMessageText, safeUrl } from "./format.js";

// Fixed ids for the quick-create personas, so a launcher can configure e.g. the admin id
// in the bot's settings and the "管理员 admin" button then really is the admin.
const PRESETS = {
  // The demo city's people (bot/defaults/demo-city.yaml), so a persona has its role in the bot.
  admin: { id: 10000, first_name: "王管理" },
  inspector: { id: 10001, first_name: "张督查" },
  resident: { id: 20001, first_name: "赵居民" },
};
const UNIT_GROUP_TITLE = "责任单位群 Unit group";
const DEMO_LOCATION = { latitude: 39.908722, longitude: 116.397499 }; // Tiananmen Square
const STORAGE = {
  persona: "wenming.webchat.persona",
  members: "wenming.webchat.groupMembers",
};
const POLL_TIMEOUT_S = 25;
const CALLBACK_WAIT_MS = 15000;

const $ = (id) => document.getElementById(id);

const state = {
  users: new Map(), // id -> User
  chats: new Map(), // id -> {id, type, title|first_name, bot_member, last_message_id, ...}
  chatId: null, // the open chat; private chat id == user id
  senderId: null, // who the composer speaks as
  messages: new Map(), // message_id -> Message of the open chat
  loadToken: 0, // bumps on every chat switch so stale history loads are dropped
  cursor: null, // events cursor
  primed: false, // first events batch seen (it may replay history: no unread counting)
  unread: new Map(), // chat id -> count
  pendingCallbacks: new Map(), // callback_query_id -> {button}
  earlyAnswers: new Map(), // answers that arrived before our POST returned
  sentCommands: new Set(),
  botUsername: null, // from /_sandbox/config: which t.me links open the bot's chat
  clock: null, // {now, offset_seconds, jumps, fetchedAt}: the sandbox's clock
};

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function readJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}
function writeJson(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* private mode or quota: remembering is a convenience only */
  }
}

const isGroupId = (chatId) => Number(chatId) < 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function userName(user) {
  if (!user) return "?";
  return [user.first_name, user.last_name].filter(Boolean).join(" ") || `#${user.id}`;
}
function chatName(chat) {
  if (!chat) return "?";
  return chat.title || userName(chat);
}

// A stable colour per id, like Telegram's avatar palette.
const PALETTE = ["#e17076", "#7bc862", "#e5ca77", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];
function avatar(id, label) {
  const el = document.createElement("span");
  el.className = "avatar";
  el.setAttribute("aria-hidden", "true");
  el.style.background = PALETTE[Math.abs(Number(id)) % PALETTE.length];
  el.textContent = isGroupId(id) ? "群" : Array.from(label || "?")[0];
  return el;
}

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function toast(text, { error = false } = {}) {
  const el = h("div", { class: `toast${error ? " error" : ""}`, text });
  $("toasts").append(el);
  setTimeout(() => el.classList.add("fade"), error ? 5000 : 3000);
  setTimeout(() => el.remove(), error ? 5600 : 3600);
}
function showError(prefix, err) {
  console.warn(prefix, err);
  toast(`${prefix}: ${err?.message || err}`, { error: true });
}

function showAlert(text) {
  $("alert-text").textContent = text;
  const dlg = $("alert-dialog");
  if (!dlg.open) dlg.showModal();
}

function formatTime(unixSeconds) {
  if (!unixSeconds) return "";
  const when = new Date(unixSeconds * 1000);
  const time = when.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" });
  // Once the sandbox's clock has moved, messages span days: say which day.
  if (!state.clock?.offset_seconds) return time;
  return `${when.toLocaleDateString("zh-CN", { month: "2-digit", day: "2-digit" })} ${time}`;
}

// ---------------------------------------------------------------------------
// The sandbox's clock (the bot runs on it): +1 hour, +1 day, jumps the bot offers
// ---------------------------------------------------------------------------

function clockNow() {
  const c = state.clock;
  return c ? c.now + (performance.now() - c.fetchedAt) / 1000 : Date.now() / 1000;
}

function renderClock() {
  const c = state.clock;
  if (!c) return;
  const now = new Date(clockNow() * 1000);
  const el = $("clock-now");
  el.dateTime = now.toISOString();
  el.textContent = now.toLocaleString("zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", weekday: "short", hour: "2-digit", minute: "2-digit",
  });
  const ahead = Math.floor(c.offset_seconds / 3600);
  $("clock-offset").textContent = ahead
    ? `（快进 ahead ${Math.floor(ahead / 24)} 天 d ${ahead % 24} 小时 h）` : "（实时 real time）";
  const box = $("clock-buttons");
  for (const old of box.querySelectorAll("[data-jump]")) old.remove();
  for (const j of c.jumps || []) {
    const at = new Date(j.at * 1000).toLocaleString("zh-CN", { month: "2-digit", day: "2-digit", weekday: "short", hour: "2-digit", minute: "2-digit" });
    box.append(h("button", {
      type: "button", dataset: { jump: j.name }, text: `→ ${j.label}`, title: at,
      onclick: () => moveClock(() => api.jumpClock(j.name)),
    }));
  }
}

function setClock(c) {
  state.clock = { ...c, fetchedAt: performance.now() };
  renderClock();
}

async function loadClock() {
  try {
    setClock(await api.clock());
  } catch {
    $("clock-now").closest("section").hidden = true; // a sandbox without a clock control
  }
}

async function moveClock(call) {
  try {
    setClock(await call());
    toast(`时钟 Clock → ${$("clock-now").textContent}`);
  } catch (err) {
    showError("时钟未变 Clock unchanged", err);
  }
}

// ---------------------------------------------------------------------------
// Links to the bot: t.me/<bot>?start=..., tg://resolve?domain=<bot>&start=...
// ---------------------------------------------------------------------------

/** For a link that opens this bot's chat, {payload} (null: open it only); otherwise null. */
function botLink(raw) {
  if (!state.botUsername || typeof raw !== "string") return null;
  let url;
  try {
    url = new URL(raw.trim(), window.location.href);
  } catch {
    return null;
  }
  let name = null;
  if (url.protocol === "tg:") {
    if (url.hostname !== "resolve") return null;
    name = url.searchParams.get("domain");
  } else if (["http:", "https:"].includes(url.protocol)
             && ["t.me", "www.t.me", "telegram.me"].includes(url.hostname)) {
    name = url.pathname.replace(/^\/+|\/+$/g, "");
  }
  if (!name || name.toLowerCase() !== state.botUsername.toLowerCase()) return null;
  return { payload: url.searchParams.get("start") };
}

/** As Telegram's apps do: open the private chat with the bot and send /start <payload>. */
async function openBotChat(link, userId) {
  if (userId === null || userId === undefined) return;
  await selectPersona(userId);
  if (link.payload !== null) await sendText(link.payload ? `/start ${link.payload}` : "/start");
}

function onMessageLinkClick(e) {
  const a = e.target.closest("a[href]");
  const link = a && botLink(a.getAttribute("href"));
  if (!link) return; // any other link opens as usual, in a new tab
  e.preventDefault();
  openBotChat(link, state.senderId);
}

// ---------------------------------------------------------------------------
// Directory: users and group chats
// ---------------------------------------------------------------------------

function botIsIn(chat) {
  const m = chat?.bot_member;
  return m === true || ["member", "administrator", "creator", "restricted"].includes(m);
}

/** Group members. The sandbox lists them in GET /_sandbox/chats ({user_id, status}); if a
 *  server does not, fall back to what this page added plus who spoke or joined in history. */
function membersOf(chatId) {
  const chat = state.chats.get(chatId);
  if (Array.isArray(chat?.members)) {
    return chat.members
      .filter((m) => typeof m !== "object" || !["left", "kicked"].includes(m.status))
      .map((m) => (typeof m === "object" ? m.user_id ?? m.id ?? m.user?.id : m))
      .filter((id) => state.users.has(id));
  }
  const ids = new Set();
  for (const id of readJson(STORAGE.members, {})[chatId] || []) ids.add(id);
  if (chatId === state.chatId) {
    for (const msg of sortedMessages()) {
      if (msg.from && !msg.from.is_bot) ids.add(msg.from.id);
      for (const u of msg.new_chat_members || []) if (!u.is_bot) ids.add(u.id);
      if (msg.left_chat_member) ids.delete(msg.left_chat_member.id);
    }
  }
  return [...ids].filter((id) => id !== undefined && state.users.has(id));
}
function rememberMembers(chatId, userIds) {
  const all = readJson(STORAGE.members, {});
  all[chatId] = [...new Set([...(all[chatId] || []), ...userIds])];
  writeJson(STORAGE.members, all);
}

async function refreshDirectory() {
  const [users, chats] = await Promise.all([api.listUsers(), api.listChats()]);
  state.users = new Map((users || []).map((u) => [u.id, u]));
  state.chats = new Map((chats || []).map((c) => [c.id, c]));
  renderDirectory();
}

function personaButton(chatId, title, subtitle) {
  const unread = state.unread.get(chatId) || 0;
  const current = chatId === state.chatId;
  return h("li", {},
    h("button", {
      type: "button",
      class: "persona",
      "aria-current": current ? "true" : null,
      dataset: { chatId: String(chatId) },
      onclick: () => selectPersona(chatId),
    },
    avatar(chatId, title),
    h("span", { class: "persona-text" },
      h("span", { class: "persona-name", text: title }),
      h("span", { class: "persona-sub", text: subtitle })),
    unread ? h("span", { class: "badge", text: String(unread), "aria-label": `${unread} 条未读 unread` }) : null));
}

function renderDirectory() {
  const users = [...state.users.values()].sort((a, b) => a.id - b.id);
  $("user-list").replaceChildren(
    ...users.map((u) => personaButton(u.id, userName(u), u.username ? `@${u.username}` : `id ${u.id}`)));
  $("user-empty").hidden = users.length > 0;

  const groups = [...state.chats.values()].filter((c) => c.type !== "private" && c.type !== "channel");
  $("group-list").replaceChildren(...groups.map((g) => personaButton(
    g.id, chatName(g), botIsIn(g) ? "✓ 机器人在群 bot in group" : "✗ 机器人不在群 bot not in group")));
  $("group-empty").hidden = groups.length > 0;

  // Keep the quick-create buttons honest: an existing preset selects instead of creating.
  for (const [key, preset] of Object.entries(PRESETS)) {
    const btn = document.querySelector(`[data-preset="${key}"]`);
    btn.classList.toggle("exists", state.users.has(preset.id));
  }
  if (state.chatId !== null) renderChatHeader();
}

// ---------------------------------------------------------------------------
// Choosing a persona (a user's private chat, or a group chat plus a sender)
// ---------------------------------------------------------------------------

async function selectPersona(chatId, { senderId } = {}) {
  state.chatId = chatId;
  state.unread.delete(chatId);
  const remembered = readJson(STORAGE.persona, {});
  if (isGroupId(chatId)) {
    const members = membersOf(chatId);
    state.senderId = senderId
      ?? (remembered.chatId === chatId ? remembered.senderId : null)
      ?? (members.includes(remembered.senderId) ? remembered.senderId : null)
      ?? members[0]
      ?? [...state.users.keys()][0]
      ?? null;
  } else {
    state.senderId = chatId;
  }
  writeJson(STORAGE.persona, { chatId, senderId: state.senderId });
  document.body.classList.remove("sidebar-open");
  document.body.classList.add("has-chat");
  $("welcome").hidden = true;
  renderDirectory();
  renderChatHeader();
  closePanels();
  await loadHistory();
  $("composer-text").focus({ preventScroll: true });
}

function renderChatHeader() {
  const chatId = state.chatId;
  const group = isGroupId(chatId);
  const chat = state.chats.get(chatId);
  if (group) {
    $("chat-title").textContent = chatName(chat);
    const n = membersOf(chatId).length;
    $("chat-subtitle").textContent =
      `${n} 位成员 members · ${botIsIn(chat) ? "✓ 机器人在群 bot in group" : "✗ 机器人不在群 bot not in group"}`;
  } else {
    const user = state.users.get(chatId);
    $("chat-title").textContent = userName(user);
    $("chat-subtitle").textContent = `与机器人私聊 Private chat with the bot${user?.username ? ` · @${user.username}` : ""}`;
  }
  $("group-tools").hidden = !group;
  if (group) renderSenderSelect();
}

function renderSenderSelect() {
  const select = $("sender-select");
  let ids = membersOf(state.chatId);
  // Without any known member, offer everyone rather than leave the composer dead.
  if (!ids.length) ids = [...state.users.keys()];
  if (state.senderId !== null && !ids.includes(state.senderId) && state.users.has(state.senderId)) {
    ids = [state.senderId, ...ids];
  }
  select.replaceChildren(...ids.map((id) => h("option", { value: String(id), text: userName(state.users.get(id)) })));
  if (state.senderId !== null) select.value = String(state.senderId);
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

function sortedMessages() {
  return [...state.messages.values()].sort((a, b) => a.message_id - b.message_id);
}

async function loadHistory() {
  const token = ++state.loadToken;
  const chatId = state.chatId;
  state.messages.clear();
  $("messages").replaceChildren();
  renderReplyKeyboard();
  const all = [];
  try {
    let after = 0;
    // Page through the history; 20 pages of 100 is far more than a sandbox session holds.
    for (let page = 0; page < 20; page += 1) {
      const batch = await api.messages(chatId, after, 100);
      if (!Array.isArray(batch) || !batch.length) break;
      all.push(...batch);
      after = batch[batch.length - 1].message_id;
      if (batch.length < 100) break;
    }
  } catch (err) {
    // A private chat that has never been used may not exist on the server yet.
    if (err.status !== 404) showError("加载消息失败 Could not load messages", err);
  }
  if (token !== state.loadToken) return; // the user switched chats meanwhile
  for (const msg of all) upsertMessage(msg, { scroll: false });
  scrollToBottom();
  if (isGroupId(chatId)) renderChatHeader(); // members may be known from history now
}

function isNearBottom() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
}
function scrollToBottom() {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
}

function upsertMessage(msg, { scroll = true } = {}) {
  if (!msg || msg.message_id === undefined) return;
  const pinned = isNearBottom();
  state.messages.set(msg.message_id, msg);
  const list = $("messages");
  const el = renderMessage(msg);
  const existing = list.querySelector(`:scope > li[data-message-id="${msg.message_id}"]`);
  if (existing) {
    existing.replaceWith(el);
  } else {
    // Keep message_id order even if events arrive out of order.
    const later = [...list.children].find((li) => Number(li.dataset.messageId) > msg.message_id);
    list.insertBefore(el, later ?? null);
  }
  collectCommands(msg);
  renderReplyKeyboard();
  if (scroll && (pinned || msg.from?.id === state.senderId)) scrollToBottom();
}

function removeMessage(messageId) {
  state.messages.delete(messageId);
  $("messages").querySelector(`:scope > li[data-message-id="${messageId}"]`)?.remove();
  renderReplyKeyboard();
}

function serviceText(msg) {
  const names = (users) => users.map(userName).join("、");
  if (msg.new_chat_members?.length) {
    const by = msg.from && !msg.new_chat_members.some((u) => u.id === msg.from.id) ? `${userName(msg.from)} 邀请了 added ` : "";
    return `${by}${names(msg.new_chat_members)} 加入了群 joined the group`;
  }
  if (msg.left_chat_member) return `${userName(msg.left_chat_member)} 离开了群 left the group`;
  if (msg.group_chat_created || msg.supergroup_chat_created) return "群已创建 Group created";
  if (msg.new_chat_title) return `群名改为 Title changed to “${msg.new_chat_title}”`;
  if (msg.pinned_message) return `${userName(msg.from)} 置顶了消息 pinned a message`;
  return null;
}

function largestPhoto(sizes) {
  return [...sizes].sort((a, b) => (b.width * b.height || b.file_size || 0) - (a.width * a.height || a.file_size || 0))[0];
}

function osmUrl(lat, lon) {
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
}

function renderMessage(msg) {
  const li = h("li", { dataset: { messageId: String(msg.message_id) } });
  const service = serviceText(msg);
  if (service) {
    li.className = "service";
    li.append(h("span", { text: service }));
    return li;
  }

  const fromBot = !!msg.from?.is_bot;
  const mine = !fromBot && msg.from?.id === state.senderId;
  li.className = `msg ${fromBot ? "from-bot" : mine ? "from-me" : "from-other"}`;
  const bubble = h("div", { class: "bubble" });

  // Names matter in groups (several people), not in a private chat.
  if (isGroupId(state.chatId) && !mine) {
    bubble.append(h("div", { class: "sender" }, userName(msg.from),
      fromBot ? h("span", { class: "bot-tag", text: "机器人 bot" }) : null));
  }
  if (msg.reply_to_message) {
    const r = msg.reply_to_message;
    const snippet = r.text || r.caption || (r.photo ? "🖼 照片 photo" : r.document ? "📄 文件 file" : "…");
    bubble.append(h("div", { class: "reply-quote" },
      h("strong", { text: userName(r.from) }), h("span", { text: snippet.slice(0, 120) })));
  }

  if (Array.isArray(msg.photo) && msg.photo.length) {
    const best = largestPhoto(msg.photo);
    const src = best.url || api.fileUrl(best.file_id);
    const img = h("img", {
      src,
      alt: msg.caption ? `照片 Photo: ${msg.caption}` : "照片 Photo",
      width: best.width || null,
      height: best.height || null,
    });
    // A late-loading image grows the bubble; keep the view pinned to the end if it was.
    img.addEventListener("load", () => { if (isNearBottom() || img.dataset.pin) scrollToBottom(); });
    img.dataset.pin = isNearBottom() ? "1" : "";
    bubble.append(h("a", { class: "photo", href: src, target: "_blank", rel: "noopener" }, img));
  }
  if (msg.document) {
    const d = msg.document;
    const href = d.url || api.fileUrl(d.file_id);
    const size = d.file_size ? ` · ${(d.file_size / 1024).toFixed(1)} KB` : "";
    bubble.append(h("a", { class: "document", href, download: d.file_name || "" },
      h("span", { class: "doc-icon", "aria-hidden": "true", text: "📄" }),
      h("span", { text: `${d.file_name || "文件 file"}${size}` })));
  }
  if (msg.location) {
    const { latitude: lat, longitude: lon } = msg.location;
    const shown = `${Number(lat).toFixed(6)}, ${Number(lon).toFixed(6)}`;
    bubble.append(h("p", { class: "location" },
      `📍 ${shown} `,
      h("a", { href: osmUrl(lat, lon), target: "_blank", rel: "noopener noreferrer", text: "OpenStreetMap" })));
  }
  for (const kind of ["sticker", "video", "voice", "audio", "animation", "video_note", "contact", "poll", "venue"]) {
    if (msg[kind] && !(kind === "venue" && msg.location)) {
      bubble.append(h("p", { class: "unsupported", text: `[${kind}]` }));
    }
  }
  const rich = renderMessageText(msg, msg.text !== undefined ? "text" : "caption");
  if (rich) bubble.append(h("div", { class: "text" }, rich));

  const meta = h("div", { class: "meta" });
  if (msg.edit_date) meta.append(h("span", { class: "edited", text: "已编辑 edited" }));
  meta.append(h("time", { datetime: new Date((msg.date || 0) * 1000).toISOString(), text: formatTime(msg.date) }));
  bubble.append(meta);
  li.append(bubble);

  const rows = msg.reply_markup?.inline_keyboard;
  if (Array.isArray(rows) && rows.length) li.append(renderInlineKeyboard(msg, rows));
  return li;
}

// ---------------------------------------------------------------------------
// Inline keyboards and callback queries
// ---------------------------------------------------------------------------

function renderInlineKeyboard(msg, rows) {
  const box = h("div", { class: "inline-keyboard", role: "group", "aria-label": "消息按钮 Message buttons" });
  for (const row of rows) {
    const rowEl = h("div", { class: "kb-row" });
    for (const b of row) {
      if (b.url) {
        const href = safeUrl(b.url);
        rowEl.append(href
          ? h("a", { class: "kb-btn", href, target: "_blank", rel: "noopener noreferrer" }, b.text, h("span", { class: "ext", "aria-hidden": "true", text: " ↗" }))
          : h("button", { class: "kb-btn", type: "button", disabled: true, text: b.text }));
      } else if (b.callback_data !== undefined) {
        const btn = h("button", { class: "kb-btn", type: "button", text: b.text });
        btn.addEventListener("click", () => pressCallbackButton(msg, btn, b.callback_data));
        rowEl.append(btn);
      } else if (b.copy_text?.text !== undefined) {
        rowEl.append(h("button", {
          class: "kb-btn", type: "button", text: b.text,
          onclick: () => navigator.clipboard?.writeText(b.copy_text.text).then(() => toast("已复制 Copied")),
        }));
      } else {
        // switch_inline_query, web_app, login_url, pay...: Telegram-only features.
        rowEl.append(h("button", {
          class: "kb-btn", type: "button", disabled: true, text: b.text,
          title: "沙盒不支持此按钮 Not supported in the sandbox",
        }));
      }
    }
    box.append(rowEl);
  }
  return box;
}

async function pressCallbackButton(msg, btn, data) {
  if (state.senderId === null) return;
  btn.disabled = true;
  btn.setAttribute("aria-busy", "true");
  let id;
  try {
    const res = await api.pressButton(state.senderId, state.chatId, msg.message_id, data);
    id = String(res.callback_query_id ?? res.id);
  } catch (err) {
    restoreButton(btn);
    showError("按钮失败 Button failed", err);
    return;
  }
  state.pendingCallbacks.set(id, { btn, senderId: state.senderId });
  if (state.earlyAnswers.has(id)) {
    onCallbackAnswer(id, state.earlyAnswers.get(id));
    state.earlyAnswers.delete(id);
    return;
  }
  // The events stream usually brings the answer first; polling covers a missed event.
  const deadline = Date.now() + CALLBACK_WAIT_MS;
  let delay = 150;
  while (state.pendingCallbacks.has(id) && Date.now() < deadline) {
    await sleep(delay);
    delay = Math.min(delay * 2, 1000);
    if (!state.pendingCallbacks.has(id)) return;
    try {
      const ans = await api.callbackAnswer(id);
      if (ans?.answered) onCallbackAnswer(id, ans);
    } catch { /* keep waiting; the events stream may still deliver it */ }
  }
  if (state.pendingCallbacks.has(id)) {
    state.pendingCallbacks.delete(id);
    restoreButton(btn);
    toast("机器人没有回应按钮 The bot did not answer the button", { error: true });
  }
}

function restoreButton(btn) {
  btn.disabled = false;
  btn.removeAttribute("aria-busy");
}

function onCallbackAnswer(id, answer) {
  const pending = state.pendingCallbacks.get(id);
  if (!pending) return; // someone else's button (another tab), or already handled
  state.pendingCallbacks.delete(id);
  restoreButton(pending.btn);
  if (answer.text) {
    if (answer.show_alert) showAlert(answer.text);
    else toast(answer.text);
  }
  // answerCallbackQuery's url: Telegram opens a t.me link to the bot (with start=...).
  const link = answer.url ? botLink(answer.url) : null;
  if (link) openBotChat(link, pending.senderId);
}

// ---------------------------------------------------------------------------
// Reply keyboards (ReplyKeyboardMarkup), as the sandbox records them beside the message
// ---------------------------------------------------------------------------

function renderReplyKeyboard() {
  let markup = null;
  for (const msg of sortedMessages()) {
    // The sandbox keeps a ReplyKeyboardMarkup beside the message as "reply_keyboard" (the Bot
    // API's Message has no such field); accept it under reply_markup too.
    const rk = msg.reply_keyboard ?? (msg.reply_markup?.inline_keyboard ? null : msg.reply_markup);
    if (!msg.from?.is_bot || !rk) continue;
    if (rk.keyboard) markup = rk;
    else if (rk.remove_keyboard) markup = null;
  }
  const box = $("reply-keyboard");
  box.hidden = !markup;
  if (!markup) { box.replaceChildren(); return; }
  box.replaceChildren(...markup.keyboard.map((row) => h("div", { class: "kb-row" },
    row.map((b) => {
      const label = typeof b === "string" ? b : b.text;
      return h("button", {
        type: "button", class: "kb-btn", text: label,
        onclick: () => {
          if (b.request_location) { openLocationPanel(); return; }
          if (markup.one_time_keyboard) box.hidden = true;
          sendText(label);
        },
      });
    }))));
}

// ---------------------------------------------------------------------------
// Composer
// ---------------------------------------------------------------------------

function requireSender() {
  if (state.chatId === null || state.senderId === null) {
    toast("请先选择一个身份 Choose a persona first", { error: true });
    document.body.classList.add("sidebar-open");
    return false;
  }
  return true;
}

// For a private chat the server's default chat is the right one; only groups need chat_id.
const targetChat = () => (isGroupId(state.chatId) ? state.chatId : undefined);

async function sendText(text) {
  if (!requireSender() || !text.trim()) return false;
  try {
    const msg = await api.sendText(state.senderId, targetChat(), text);
    if (text.startsWith("/")) state.sentCommands.add(text.split(/[\s@]/)[0]);
    upsertMessage(msg);
    return true;
  } catch (err) {
    showError("发送失败 Send failed", err);
    return false;
  }
}

async function onComposerSubmit(e) {
  e.preventDefault();
  const box = $("composer-text");
  const text = box.value;
  if (!text.trim()) return;
  box.value = ""; // clear at once so a fast second Enter cannot double-send
  autoGrow();
  if (!(await sendText(text))) box.value = text;
}

function autoGrow() {
  const box = $("composer-text");
  box.style.height = "auto";
  // scrollHeight excludes the borders while height (border-box) includes them.
  const borders = box.offsetHeight - box.clientHeight;
  const wanted = box.scrollHeight + borders;
  box.style.height = `${Math.min(wanted, 160)}px`;
  box.style.overflowY = wanted > 160 ? "auto" : "hidden"; // a scrollbar only when needed
}

async function onPhotoChosen() {
  const input = $("photo-input");
  const file = input.files?.[0];
  input.value = ""; // so choosing the same file again fires "change"
  if (!file || !requireSender()) return;
  const captionBox = $("composer-text");
  const caption = captionBox.value.trim();
  try {
    const msg = await api.sendPhoto(state.senderId, targetChat(), file, {
      caption: caption || undefined,
      asDocument: $("as-file").checked,
    });
    captionBox.value = "";
    autoGrow();
    upsertMessage(msg);
  } catch (err) {
    showError("照片发送失败 Photo failed", err);
  }
}

function closePanels() {
  $("location-form").hidden = true;
  $("location-btn").setAttribute("aria-expanded", "false");
  $("command-menu").hidden = true;
  $("commands-btn").setAttribute("aria-expanded", "false");
}

function openLocationPanel() {
  closePanels();
  $("location-form").hidden = false;
  $("location-btn").setAttribute("aria-expanded", "true");
  $("lat").focus();
}

async function onLocationSubmit(e) {
  e.preventDefault();
  if (!requireSender()) return;
  const latitude = Number($("lat").value);
  const longitude = Number($("lon").value);
  try {
    const msg = await api.sendLocation(state.senderId, targetChat(), latitude, longitude);
    closePanels();
    upsertMessage(msg);
  } catch (err) {
    showError("位置发送失败 Location failed", err);
  }
}

function useMyLocation() {
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      $("lat").value = pos.coords.latitude.toFixed(6);
      $("lon").value = pos.coords.longitude.toFixed(6);
    },
    (err) => toast(`无法获取位置 No location: ${err.message}`, { error: true }),
    { timeout: 8000 },
  );
}

// Commands: what the bot registered with setMyCommands (GET /_sandbox/commands), plus
// commands seen in the conversation (bot_command entities, /words in the bot's text) and
// what was sent, since many bots never call setMyCommands.
const knownCommands = new Set();
const commandHelp = new Map(); // "/start" -> description

async function loadRegisteredCommands() {
  let sets = [];
  try {
    sets = await api.commands();
  } catch {
    return; // an older sandbox without the endpoint: the transcript is enough
  }
  const lang = state.users.get(state.senderId)?.language_code || "";
  const group = isGroupId(state.chatId);
  // Prefer a scope that fits the open chat, then a language match, like Telegram clients.
  const scopeRank = (t) => ({ [group ? "all_group_chats" : "all_private_chats"]: 2, default: 1 }[t] ?? 0);
  const rank = (s) => scopeRank(s.scope?.type || "default") * 2 + (s.language_code && lang.startsWith(s.language_code) ? 1 : 0)
    - (s.language_code && !lang.startsWith(s.language_code) ? 10 : 0);
  const best = [...(sets || [])].filter((s) => rank(s) >= 0).sort((a, b) => rank(b) - rank(a))[0];
  for (const c of best?.commands || []) {
    const name = `/${c.command}`;
    knownCommands.add(name);
    commandHelp.set(name, c.description || "");
  }
}
function collectCommands(msg) {
  const text = msg.text || msg.caption || "";
  for (const e of msg.entities || msg.caption_entities || []) {
    if (e.type === "bot_command") knownCommands.add(text.substr(e.offset, e.length).split("@")[0]);
  }
  if (msg.from?.is_bot) {
    for (const m of text.matchAll(/(?:^|\s)(\/[a-z][a-z0-9_]{0,31})\b/g)) knownCommands.add(m[1]);
  }
}

async function toggleCommandMenu() {
  const menu = $("command-menu");
  const open = menu.hidden;
  closePanels();
  if (!open) return;
  await loadRegisteredCommands();
  // Fall back to the usual two only when the bot registered nothing.
  const defaults = commandHelp.size ? [] : ["/start", "/help"];
  const cmds = [...new Set([...defaults, ...knownCommands, ...state.sentCommands])].sort();
  menu.replaceChildren(...cmds.map((c) => h("button", {
    type: "button", class: "cmd", title: commandHelp.get(c) || null,
    onclick: () => { closePanels(); sendText(c); },
  }, h("span", { class: "cmd-name", text: c }),
     commandHelp.get(c) ? h("span", { class: "cmd-desc", text: commandHelp.get(c) }) : null)));
  menu.hidden = false;
  $("commands-btn").setAttribute("aria-expanded", "true");
  menu.querySelector("button")?.focus();
}

// ---------------------------------------------------------------------------
// Live updates: long-poll /_sandbox/events
// ---------------------------------------------------------------------------

function setConn(stateName) {
  const el = $("conn");
  if (el.dataset.state === stateName) return;
  el.dataset.state = stateName;
  el.textContent = {
    live: "● 已连接 live",
    connecting: "连接中 connecting",
    offline: "⚠ 重连中 reconnecting",
  }[stateName];
}

let directoryRefresh = null;
function refreshDirectorySoon() {
  clearTimeout(directoryRefresh);
  directoryRefresh = setTimeout(() => refreshDirectory().catch(() => {}), 300);
}

function handleEvent(ev, { countUnread }) {
  const msg = ev.message;
  const chatId = ev.chat_id ?? msg?.chat?.id;
  if (ev.type === "clock") {
    if (ev.clock) setClock(ev.clock);
    return;
  }
  if (ev.type === "callback_answer") {
    const id = String(ev.callback_query_id ?? ev.callback_query?.id ?? ev.answer?.callback_query_id ?? ev.id);
    const answer = ev.answer ?? { text: ev.text, show_alert: ev.show_alert, url: ev.url };
    if (state.pendingCallbacks.has(id)) onCallbackAnswer(id, answer);
    else state.earlyAnswers.set(id, answer);
    return;
  }
  // Something about a chat or person we do not know yet (another tab, the bot): refresh.
  if (chatId !== undefined && !state.chats.has(chatId) && !state.users.has(chatId)) refreshDirectorySoon();
  if (msg?.from && !msg.from.is_bot && !state.users.has(msg.from.id)) refreshDirectorySoon();
  if (msg?.new_chat_members || msg?.left_chat_member) refreshDirectorySoon();

  if (chatId !== state.chatId) {
    if (ev.type === "message" && countUnread && !(msg?.from && msg.from.id === state.senderId)) {
      state.unread.set(chatId, (state.unread.get(chatId) || 0) + 1);
      renderDirectory();
    }
    return;
  }
  if (ev.type === "delete") {
    const ids = ev.message_ids ?? [ev.message_id ?? msg?.message_id];
    for (const id of ids) if (id !== undefined) removeMessage(id);
  } else if (msg) {
    upsertMessage(msg);
    if (msg.new_chat_members || msg.left_chat_member) renderChatHeader();
  }
}

async function eventLoop() {
  let backoff = 1000;
  for (;;) {
    try {
      // The first call does not wait: it only learns the cursor (and may replay history).
      const res = await api.events(state.cursor, state.primed ? POLL_TIMEOUT_S : 0);
      const wasOffline = $("conn").dataset.state === "offline";
      setConn("live");
      backoff = 1000;
      if (res?.cursor !== undefined && res.cursor !== null) state.cursor = res.cursor;
      for (const ev of res?.events || []) {
        try {
          handleEvent(ev, { countUnread: state.primed });
        } catch (err) {
          console.error("event failed", ev, err);
        }
      }
      state.primed = true;
      // After an outage events may be missing (or the sandbox restarted): resync.
      if (wasOffline) {
        await refreshDirectory().catch(() => {});
        if (state.chatId !== null) await loadHistory();
      }
    } catch (err) {
      setConn("offline");
      console.warn("events: retrying in", backoff, "ms", err);
      await sleep(backoff + Math.random() * 300);
      backoff = Math.min(backoff * 2, 15000);
    }
  }
}

// ---------------------------------------------------------------------------
// Creating personas
// ---------------------------------------------------------------------------

async function ensurePresetUser(key) {
  const preset = PRESETS[key];
  if (!state.users.has(preset.id)) {
    try {
      const user = await api.createUser({ ...preset, language_code: "zh-hans" });
      state.users.set(user.id, user);
    } catch (err) {
      // Created meanwhile (another tab): fine if it now exists.
      await refreshDirectory();
      if (!state.users.has(preset.id)) throw err;
    }
  }
  return preset.id;
}

async function onPresetClick(key) {
  try {
    if (key === "unit_group") {
      openGroupDialog({ mode: "create", title: UNIT_GROUP_TITLE, preselectAll: true });
      return;
    }
    const id = await ensurePresetUser(key);
    await refreshDirectory();
    await selectPersona(id);
  } catch (err) {
    showError("创建失败 Could not create", err);
  }
}

function openUserDialog() {
  const form = $("user-form");
  form.reset();
  $("user-dialog").showModal();
}

async function onUserSubmit(e) {
  e.preventDefault();
  const data = Object.fromEntries(new FormData(e.target));
  for (const k of ["last_name", "username"]) if (!data[k]) delete data[k];
  try {
    const user = await api.createUser(data);
    $("user-dialog").close();
    await refreshDirectory();
    await selectPersona(user.id);
  } catch (err) {
    showError("创建用户失败 Could not create the user", err);
  }
}

let groupDialogMode = { mode: "create" };

function openGroupDialog({ mode, title = "", preselectAll = false }) {
  groupDialogMode = { mode };
  const form = $("group-form");
  form.reset();
  const manage = mode === "manage";
  const chat = manage ? state.chats.get(state.chatId) : null;
  const existing = manage ? new Set(membersOf(state.chatId)) : new Set();
  $("group-dialog-title").textContent = manage ? "群成员 Group members" : "新群 New group";
  $("group-submit").textContent = manage ? "保存 Save" : "创建 Create";
  form.elements.title.value = manage ? chatName(chat) : title;
  form.elements.title.readOnly = manage;
  form.elements.with_bot.checked = manage ? botIsIn(chat) : true;

  const options = [...state.users.values()].sort((a, b) => a.id - b.id)
    .map((u) => ({ value: String(u.id), label: `${userName(u)}${u.username ? ` @${u.username}` : ""}`, member: existing.has(u.id) }));
  // Presets not created yet are offered too, so a group can be made from an empty sandbox.
  if (!manage) {
    for (const [key, p] of Object.entries(PRESETS)) {
      if (!state.users.has(p.id)) options.push({ value: `preset:${key}`, label: `${userName(p)}（新建 new）`, member: false });
    }
  }
  $("group-members").replaceChildren(...options.map((o) => h("label", { class: "inline" },
    h("input", {
      type: "checkbox", name: "member", value: o.value,
      checked: o.member || (preselectAll && !o.value.startsWith("preset:")) || (preselectAll && options.every((x) => x.value.startsWith("preset:"))),
      disabled: o.member,
    }),
    ` ${o.label}${o.member ? " ✓" : ""}`)));
  $("group-dialog").showModal();
}

async function onGroupSubmit(e) {
  e.preventDefault();
  const form = e.target;
  const chosen = [...form.querySelectorAll('input[name="member"]:checked:not(:disabled)')].map((i) => i.value);
  const withBot = form.elements.with_bot.checked;
  try {
    const newIds = [];
    for (const v of chosen) newIds.push(v.startsWith("preset:") ? await ensurePresetUser(v.slice(7)) : Number(v));

    if (groupDialogMode.mode === "manage") {
      const chatId = state.chatId;
      for (const id of newIds) await api.addMember(chatId, id);
      rememberMembers(chatId, newIds);
      const chat = state.chats.get(chatId);
      const by = state.senderId ?? membersOf(chatId)[0] ?? newIds[0];
      if (withBot !== botIsIn(chat)) {
        if (by === undefined) throw new Error("需要一位成员 A member is needed");
        await api.setBotMembership(chatId, withBot ? "add" : "remove", by);
      }
      $("group-dialog").close();
      await refreshDirectory();
      renderChatHeader();
      return;
    }

    if (withBot && !newIds.length) {
      toast("请至少选择一位成员（由他添加机器人）Choose at least one member (they add the bot)", { error: true });
      return;
    }
    // The first member creates the group and adds the bot; the others join afterwards, so
    // the bot sees them arrive as it would in a real group.
    const [first, ...rest] = newIds;
    const chat = await api.createGroup({
      title: form.elements.title.value.trim(), type: "supergroup", creator_user_id: first,
    });
    if (withBot) await api.setBotMembership(chat.id, "add", first);
    for (const id of rest) await api.addMember(chat.id, id);
    rememberMembers(chat.id, newIds);
    $("group-dialog").close();
    await refreshDirectory();
    await selectPersona(chat.id, { senderId: first ?? null });
  } catch (err) {
    showError("群操作失败 Group action failed", err);
  }
}

// ---------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------

function wire() {
  for (const btn of document.querySelectorAll("[data-preset]")) {
    btn.addEventListener("click", () => onPresetClick(btn.dataset.preset));
  }
  $("new-user-btn").addEventListener("click", openUserDialog);
  $("new-group-btn").addEventListener("click", () => openGroupDialog({ mode: "create" }));
  $("manage-group-btn").addEventListener("click", () => openGroupDialog({ mode: "manage" }));
  $("user-form").addEventListener("submit", onUserSubmit);
  $("group-form").addEventListener("submit", onGroupSubmit);
  for (const b of document.querySelectorAll("dialog [data-close]")) {
    b.addEventListener("click", () => b.closest("dialog").close());
  }

  $("sender-select").addEventListener("change", (e) => {
    state.senderId = Number(e.target.value);
    writeJson(STORAGE.persona, { chatId: state.chatId, senderId: state.senderId });
    // "Mine" vs "theirs" bubbles depend on the sender: redraw.
    for (const msg of sortedMessages()) upsertMessage(msg, { scroll: false });
  });

  $("composer").addEventListener("submit", onComposerSubmit);
  const box = $("composer-text");
  box.addEventListener("input", autoGrow);
  box.addEventListener("keydown", (e) => {
    // Enter sends, Shift+Enter is a newline; never send while an IME (pinyin) is composing.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });

  $("photo-btn").addEventListener("click", () => { if (requireSender()) $("photo-input").click(); });
  $("photo-input").addEventListener("change", onPhotoChosen);

  $("location-btn").addEventListener("click", () => {
    if ($("location-form").hidden) openLocationPanel(); else closePanels();
  });
  $("location-form").addEventListener("submit", onLocationSubmit);
  $("location-cancel").addEventListener("click", closePanels);
  $("demo-location-btn").addEventListener("click", () => {
    $("lat").value = DEMO_LOCATION.latitude;
    $("lon").value = DEMO_LOCATION.longitude;
  });
  // Geolocation needs a secure context and may be absent or blocked: offer it only if present.
  if (navigator.geolocation && window.isSecureContext) {
    $("geo-btn").hidden = false;
    $("geo-btn").addEventListener("click", useMyLocation);
  }

  $("commands-btn").addEventListener("click", toggleCommandMenu);
  $("messages").addEventListener("click", onMessageLinkClick);
  for (const btn of document.querySelectorAll("[data-advance]")) {
    btn.addEventListener("click", () => moveClock(() => api.advanceClock(Number(btn.dataset.advance))));
  }
  setInterval(renderClock, 30000);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closePanels(); });

  $("sidebar-open").addEventListener("click", () => document.body.classList.add("sidebar-open"));
  $("sidebar-close").addEventListener("click", () => document.body.classList.remove("sidebar-open"));
}

async function main() {
  wire();
  eventLoop(); // runs forever; not awaited
  try {
    await refreshDirectory();
    state.botUsername = (await api.config())?.bot?.username ?? null;
  } catch (err) {
    showError("无法连接沙盒 Cannot reach the sandbox", err);
  }
  await loadClock();
  const last = readJson(STORAGE.persona, null);
  if (last && (state.users.has(last.chatId) || state.chats.has(last.chatId))) {
    await selectPersona(last.chatId, { senderId: last.senderId ?? undefined });
  } else {
    document.body.classList.add("sidebar-open"); // phones: start on the persona list
  }
}

main();
