// The sandbox's user-side API (/_sandbox/...), as small typed-by-convention functions.
// Every call throws ApiError with the server's description, so the UI can show it.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, path, { json, form, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json" } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form; // the browser sets the multipart boundary itself
  }
  const res = await fetch(path, init);
  const type = res.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const detail = body && typeof body === "object"
      ? body.description || body.error || body.message || JSON.stringify(body)
      : body || res.statusText;
    throw new ApiError(res.status, `${res.status}: ${detail}`);
  }
  // Tolerate a Bot-API-style envelope as well as a bare result.
  if (body && typeof body === "object" && !Array.isArray(body) && body.ok === true && "result" in body) {
    return body.result;
  }
  return body;
}

// Only send chat_id when it is set: the server defaults to the private chat with the sender.
function withChat(payload, chatId) {
  if (chatId !== undefined && chatId !== null) payload.chat_id = chatId;
  return payload;
}

export const api = {
  listUsers: () => request("GET", "/_sandbox/users"),
  createUser: (user) => request("POST", "/_sandbox/users", { json: user }),
  listChats: () => request("GET", "/_sandbox/chats"),
  createGroup: (group) => request("POST", "/_sandbox/groups", { json: group }),
  setBotMembership: (chatId, action, byUserId) =>
    request("POST", `/_sandbox/groups/${chatId}/bot`, { json: { action, by_user_id: byUserId } }),
  addMember: (chatId, userId) =>
    request("POST", `/_sandbox/groups/${chatId}/members`, { json: { user_id: userId } }),

  sendText: (fromUserId, chatId, text) =>
    request("POST", "/_sandbox/messages", { json: withChat({ from_user_id: fromUserId, text }, chatId) }),
  sendLocation: (fromUserId, chatId, latitude, longitude) =>
    request("POST", "/_sandbox/locations", {
      json: withChat({ from_user_id: fromUserId, latitude, longitude }, chatId),
    }),
  sendPhoto: (fromUserId, chatId, file, { caption, asDocument } = {}) => {
    const form = new FormData();
    form.append("from_user_id", String(fromUserId));
    if (chatId !== undefined && chatId !== null) form.append("chat_id", String(chatId));
    if (caption) form.append("caption", caption);
    if (asDocument) form.append("as_document", "true");
    form.append("file", file, file.name);
    return request("POST", "/_sandbox/photos", { form });
  },

  pressButton: (fromUserId, chatId, messageId, data) =>
    request("POST", "/_sandbox/callbacks", {
      json: { from_user_id: fromUserId, chat_id: chatId, message_id: messageId, data },
    }),
  callbackAnswer: (id) => request("GET", `/_sandbox/callbacks/${encodeURIComponent(id)}`),

  messages: (chatId, afterMessageId = 0, limit = 100) =>
    request("GET", `/_sandbox/chats/${chatId}/messages?after_message_id=${afterMessageId}&limit=${limit}`),

  events: (after, timeout, signal) => {
    const params = new URLSearchParams({ timeout: String(timeout) });
    if (after !== null && after !== undefined) params.set("after", String(after));
    return request("GET", `/_sandbox/events?${params}`, { signal });
  },

  commands: () => request("GET", "/_sandbox/commands"),
  config: () => request("GET", "/_sandbox/config"),

  // The sandbox's clock: {now, iso, offset_seconds, jumps: [{name, label, at}]}.
  clock: () => request("GET", "/_sandbox/clock"),
  advanceClock: (seconds) => request("POST", "/_sandbox/clock", { json: { advance_seconds: seconds } }),
  jumpClock: (name) => request("POST", "/_sandbox/clock", { json: { jump: name } }),

  fileUrl: (fileId) => `/_sandbox/files/${encodeURIComponent(fileId)}`,
};
