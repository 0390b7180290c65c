// Rendering of Telegram-formatted text into DOM nodes, safely.
//
// Nothing here ever assigns innerHTML: every node is built with createElement /
// createTextNode, so text from the bot or from users can never become markup.
// Two inputs are supported because a message can carry its formatting either way:
//   * text + entities (what the real Bot API returns: plain text, UTF-16 offsets), and
//   * Telegram HTML (parse_mode "HTML"), filtered down to Telegram's own tag allowlist.

// Link schemes we are willing to put in an href; anything else (javascript:, data:, ...)
// is rendered as plain text.
const SAFE_SCHEMES = new Set(["http:", "https:", "tg:", "mailto:", "tel:"]);

/** Returns a safe absolute URL string, or null when the URL is not one we would open. */
export function safeUrl(raw) {
  if (typeof raw !== "string" || raw.trim() === "") return null;
  try {
    const url = new URL(raw.trim(), window.location.href);
    return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function link(href, { external = true } = {}) {
  const a = document.createElement("a");
  a.href = href;
  if (external) {
    // The page must not be reachable from the opened tab (reverse tabnabbing).
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  }
  return a;
}

// Spoilers hide their text until clicked, as in Telegram. They are buttons so keyboard users
// can reveal them too.
function spoiler() {
  const el = document.createElement("span");
  el.className = "spoiler";
  el.tabIndex = 0;
  el.setAttribute("role", "button");
  el.setAttribute("aria-label", "剧透，点击显示 Spoiler, activate to reveal");
  const reveal = () => {
    el.classList.add("revealed");
    el.removeAttribute("role");
    el.removeAttribute("tabindex");
    el.removeAttribute("aria-label");
  };
  el.addEventListener("click", reveal, { once: true });
  el.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); reveal(); }
  });
  return el;
}

// ---------------------------------------------------------------------------
// Telegram HTML → DOM
// ---------------------------------------------------------------------------

// Telegram's documented tags and their synonyms, mapped to the element we emit.
const TAG_MAP = {
  b: "b", strong: "b",
  i: "i", em: "i",
  u: "u", ins: "u",
  s: "s", strike: "s", del: "s",
  code: "code", pre: "pre",
  blockquote: "blockquote",
};

/**
 * Renders Telegram HTML: the allowlisted tags become elements, any other tag is dropped
 * but its text kept, and attributes are dropped except a[href] (safe schemes only),
 * pre > code[class="language-…"] and blockquote[expandable].
 */
export function renderTelegramHtml(html) {
  // DOMParser documents are inert: scripts do not run and images do not load, so parsing
  // hostile input here is harmless; only what convert() copies out reaches the page.
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");
  const frag = document.createDocumentFragment();
  for (const child of doc.body.childNodes) convertNode(child, frag);
  return frag;
}

function convertNode(node, parent) {
  if (node.nodeType === Node.TEXT_NODE) {
    parent.appendChild(document.createTextNode(node.nodeValue));
    return;
  }
  if (node.nodeType !== Node.ELEMENT_NODE) return; // comments, processing instructions
  const tag = node.localName;
  let el = null;
  if (TAG_MAP[tag]) {
    el = document.createElement(TAG_MAP[tag]);
    if (tag === "code") {
      const lang = /^language-([\w+#.-]{1,32})$/.exec(node.getAttribute("class") || "");
      if (lang) el.className = `language-${lang[1]}`;
    }
    if (tag === "blockquote" && node.hasAttribute("expandable")) el.classList.add("expandable");
  } else if (tag === "a") {
    const href = safeUrl(node.getAttribute("href"));
    if (href) el = link(href);
  } else if (tag === "tg-spoiler" || (tag === "span" && node.classList.contains("tg-spoiler"))) {
    el = spoiler();
  } else if (tag === "br") {
    parent.appendChild(document.createTextNode("\n"));
    return;
  }
  // Unknown tags (and unsafe links) contribute their text only.
  const target = el ?? parent;
  for (const child of node.childNodes) convertNode(child, target);
  if (el) parent.appendChild(el);
}

// ---------------------------------------------------------------------------
// text + entities → DOM
// ---------------------------------------------------------------------------

function elementForEntity(entity, text) {
  const slice = text.slice(entity.offset, entity.offset + entity.length);
  switch (entity.type) {
    case "bold": return document.createElement("b");
    case "italic": return document.createElement("i");
    case "underline": return document.createElement("u");
    case "strikethrough": return document.createElement("s");
    case "code": return document.createElement("code");
    case "pre": {
      const pre = document.createElement("pre");
      if (entity.language) pre.dataset.language = entity.language;
      return pre;
    }
    case "spoiler": return spoiler();
    case "blockquote": return document.createElement("blockquote");
    case "expandable_blockquote": {
      const q = document.createElement("blockquote");
      q.className = "expandable";
      return q;
    }
    case "text_link": {
      const href = safeUrl(entity.url);
      return href ? link(href) : null;
    }
    case "url": {
      const href = safeUrl(/^[a-z][a-z0-9+.-]*:/i.test(slice) ? slice : `https://${slice}`);
      return href ? link(href) : null;
    }
    case "email": return link(`mailto:${slice}`, { external: false });
    case "phone_number": return link(`tel:${slice.replace(/[^\d+]/g, "")}`, { external: false });
    case "mention": case "hashtag": case "cashtag": case "bot_command": case "text_mention": {
      const span = document.createElement("span");
      span.className = `entity-${entity.type}`;
      return span;
    }
    default: return null; // custom_emoji etc.: keep the text as it is
  }
}

/**
 * Renders `text` with Telegram MessageEntity objects. Offsets are in UTF-16 code units,
 * which is exactly how JavaScript strings index, so slicing is direct.
 */
export function renderEntities(text, entities) {
  const frag = document.createDocumentFragment();
  const sorted = (entities || [])
    .filter((e) => Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
    // Outer entities first: same start, longer first.
    .sort((a, b) => a.offset - b.offset || b.length - a.length);
  buildRange(frag, text, 0, text.length, sorted);
  return frag;
}

// Entities nest (Telegram rejects partial overlaps on input, but be tolerant): the first
// entity in order owns its range; entities starting inside it are rendered inside it,
// clipped to its end.
function buildRange(parent, text, start, end, entities) {
  let pos = start;
  let i = 0;
  while (i < entities.length) {
    const e = entities[i];
    const eStart = Math.max(e.offset, pos);
    const eEnd = Math.min(e.offset + e.length, end);
    if (eStart >= eEnd) { i += 1; continue; }
    if (eStart > pos) parent.appendChild(document.createTextNode(text.slice(pos, eStart)));
    const inner = [];
    let j = i + 1;
    while (j < entities.length && entities[j].offset < eEnd) {
      inner.push(entities[j]);
      j += 1;
    }
    const el = elementForEntity(e, text);
    buildRange(el ?? parent, text, eStart, eEnd, inner);
    if (el) parent.appendChild(el);
    pos = eEnd;
    i = j;
  }
  if (pos < end) parent.appendChild(document.createTextNode(text.slice(pos, end)));
}

/**
 * Rich text of a message's `text` or `caption`.
 * Entities win when present (that is what the Bot API returns). Raw Telegram HTML is
 * rendered only when the message says so (parse_mode "HTML", as a sandbox may keep it) and
 * only for bot messages: what a person typed is always shown literally.
 */
export function renderMessageText(msg, field) {
  const text = msg[field];
  if (typeof text !== "string" || text === "") return null;
  const entities = field === "caption" ? msg.caption_entities : msg.entities;
  if (Array.isArray(entities) && entities.length) return renderEntities(text, entities);
  const parseMode = String(msg.parse_mode || msg[`${field}_parse_mode`] || "").toUpperCase();
  if (msg.from?.is_bot && parseMode === "HTML") return renderTelegramHtml(text);
  return document.createTextNode(text);
}
