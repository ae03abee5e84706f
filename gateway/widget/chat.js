/* Switchboard web chat widget (issue 21, ING-6). Vanilla JS, no dependency, no request to
 * anyone but the gateway that served it. The gateway puts the widget's settings in front
 * (window.__sbChat.push({...})). Japanese or English by the page's (then the browser's)
 * language. Accessible: a labelled launcher button, a dialog with its focus managed, the
 * messages in an aria-live log, everything by keyboard. Reconnects with back-off and
 * resumes after the last message it has (after_seq): nothing lost, nothing twice. */
(function () {
  "use strict";
  var queue = window.__sbChat || [];
  var config = queue[queue.length - 1];
  if (!config || window["__sbChatOn_" + config.key]) return;
  window["__sbChatOn_" + config.key] = true;

  var me = document.currentScript;
  var base = me && me.src ? new URL(me.src).origin : location.origin;
  var wsBase = base.replace(/^http/, "ws");
  var pageLang = (document.documentElement.lang || navigator.language || "en").toLowerCase();
  var lang = pageLang.indexOf("ja") === 0 ? "ja" : "en";
  var T = {
    ja: {
      open: "チャットで問い合わせる", close: "チャットを閉じる", title: "チャット",
      input: "メッセージ", send: "送信", typing: "担当者が入力中…",
      hello: "こんにちは。ご用件をどうぞ。", you: "あなた", staff: "担当者",
      offline: "ただいま対応できる担当者がいません。フォームからお問い合わせください。",
      name: "お名前（任意）", email: "メールアドレス（任意・記録をお送りします）",
      save: "保存", saved: "保存しました。チャット終了時に記録をお送りします。",
      message: "お問い合わせ内容", submit: "送信する", sent: "送信しました。ありがとうございます。",
      end: "チャットを終了", ended: "チャットを終了しました。",
      reconnecting: "接続が切れました。再接続しています…", failed: "送信できませんでした",
      limited: "送信が多すぎます。少し待ってから送ってください。", tooLong: "メッセージが長すぎます。",
      required: "メールアドレスと内容を入力してください。", newMessage: "新しいメッセージ"
    },
    en: {
      open: "Chat with us", close: "Close the chat", title: "Chat",
      input: "Message", send: "Send", typing: "An operator is typing…",
      hello: "Hello! How can we help?", you: "You", staff: "Staff",
      offline: "Nobody is available to chat right now. Please send us the form instead.",
      name: "Your name (optional)", email: "Your email (optional: we send you the transcript)",
      save: "Save", saved: "Saved. You get the transcript when the chat ends.",
      message: "Your message", submit: "Send", sent: "Sent. Thank you!",
      end: "End chat", ended: "The chat has ended.",
      reconnecting: "Connection lost. Reconnecting…", failed: "Not sent",
      limited: "Too many messages; please wait a moment.", tooLong: "The message is too long.",
      required: "Please give your email address and your message.", newMessage: "New message"
    }
  }[lang];
  var storeKey = "sbchat:" + config.key;
  var colour = /^#[0-9a-fA-F]{3,8}$/.test(config.colour || "") ? config.colour : "#0b57d0";
  var side = config.position === "left" ? "left" : "right";

  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey) || "{}") || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  var state = load(); // {token, open}
  var seen = {}; // seq → true: shown on this page
  var lastSeq = 0; // the last seq shown on this page: a reconnect resumes after it
  var pending = []; // [{key, text, el}] sent, not yet acknowledged
  var ws = null, attempt = 0, timer = null, ready = false, online = null, ended = false, formSent = false;
  var typingSent = 0, typingStop = null, typingHide = null;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }

  var host = el("div", { "data-switchboard-chat": "" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var css = el("style");
  css.textContent =
    ":host{all:initial}[hidden]{display:none!important}*{box-sizing:border-box;font-family:system-ui,-apple-system,'Hiragino Sans','Noto Sans JP',sans-serif;font-size:14px}" +
    ".l{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483646;border:0;border-radius:28px;padding:0 20px;height:56px;background:" + colour + ";color:#fff;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.3);font-weight:600}" +
    ".l:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid #222;outline-offset:2px}" +
    ".p{position:fixed;bottom:88px;" + side + ":20px;z-index:2147483647;width:360px;max-width:calc(100vw - 40px);height:500px;max-height:calc(100vh - 110px);background:#fff;color:#1f1f1f;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.3);display:flex;flex-direction:column;overflow:hidden}" +
    ".p[hidden]{display:none}.h{background:" + colour + ";color:#fff;padding:10px 12px;display:flex;align-items:center;gap:8px}" +
    ".h h2{flex:1;margin:0;font-size:16px}.h button{background:transparent;color:#fff;border:1px solid rgba(255,255,255,.6);border-radius:6px;padding:4px 8px;cursor:pointer}" +
    ".m{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f7f9}" +
    ".b{max-width:80%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word;line-height:1.4}" +
    ".in{align-self:flex-end;background:" + colour + ";color:#fff}.out{align-self:flex-start;background:#fff;border:1px solid #dadce0}" +
    ".who{display:block;font-size:12px;opacity:.8;margin-bottom:2px}.wait{opacity:.6}.bad{outline:2px solid #b3261e}" +
    ".s{min-height:20px;padding:0 12px;color:#444;font-size:12px}.f{display:flex;gap:6px;padding:8px;border-top:1px solid #dadce0}" +
    ".f textarea{flex:1;resize:none;height:44px;border:1px solid #999;border-radius:6px;padding:6px}" +
    ".f button,.o button{background:" + colour + ";color:#fff;border:0;border-radius:6px;padding:0 14px;cursor:pointer;min-height:36px}" +
    ".o{padding:12px;display:flex;flex-direction:column;gap:6px;overflow-y:auto}.o input,.o textarea{border:1px solid #999;border-radius:6px;padding:6px;width:100%}" +
    ".o label{font-size:12px;color:#333}details{padding:4px 12px;border-top:1px solid #eee}summary{cursor:pointer;font-size:12px}";
  root.appendChild(css);

  var launcher = el("button", { type: "button", class: "l", "aria-expanded": "false", "aria-controls": "sbchat-panel" }, T.open);
  var panel = el("div", { class: "p", id: "sbchat-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "sbchat-title", hidden: "" });
  var head = el("div", { class: "h" });
  var title = el("h2", { id: "sbchat-title" }, config.title || T.title);
  var endBtn = el("button", { type: "button" }, T.end);
  var closeBtn = el("button", { type: "button", "aria-label": T.close }, "×");
  head.appendChild(title); head.appendChild(endBtn); head.appendChild(closeBtn);
  var log = el("div", { class: "m", role: "log", "aria-live": "polite", "aria-label": T.title, tabindex: "0" });
  var status = el("div", { class: "s", role: "status", "aria-live": "polite" });
  var contact = el("details");
  var summary = el("summary", {}, T.email);
  var cForm = el("form", { class: "o" });
  var cName = el("input", { type: "text", autocomplete: "name", maxlength: "100", "aria-label": T.name, placeholder: T.name });
  var cMail = el("input", { type: "email", autocomplete: "email", maxlength: "254", "aria-label": T.email, placeholder: "you@example.com" });
  var cSave = el("button", { type: "submit" }, T.save);
  cForm.appendChild(cName); cForm.appendChild(cMail); cForm.appendChild(cSave);
  contact.appendChild(summary); contact.appendChild(cForm);
  var form = el("form", { class: "f" });
  var input = el("textarea", { "aria-label": T.input, maxlength: "2000", rows: "2" });
  var sendBtn = el("button", { type: "submit" }, T.send);
  form.appendChild(input); form.appendChild(sendBtn);
  var offline = el("form", { class: "o", hidden: "" });
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(status);
  panel.appendChild(contact); panel.appendChild(form); panel.appendChild(offline);
  root.appendChild(launcher); root.appendChild(panel);

  function greet() {
    if (log.childNodes.length) return;
    var g = (config.greeting && config.greeting[lang]) || T.hello;
    var b = el("div", { class: "b out" }); b.textContent = g; log.appendChild(b);
  }

  function bubble(direction, text, who) {
    var b = el("div", { class: "b " + (direction === "in" ? "in" : "out") });
    b.appendChild(el("span", { class: "who" }, who || (direction === "in" ? T.you : T.staff)));
    b.appendChild(document.createTextNode(text));
    log.appendChild(b);
    log.scrollTop = log.scrollHeight;
    return b;
  }

  function show(m) {
    if (seen[m.seq]) return;
    seen[m.seq] = true;
    if (m.seq > lastSeq) lastSeq = m.seq;
    for (var i = 0; i < pending.length; i++) {
      if (m.direction === "in" && pending[i].key === m.key) {
        pending[i].el.classList.remove("wait");
        pending.splice(i, 1);
        return;
      }
    }
    bubble(m.direction, m.text, m.direction === "out" ? m.author_name : "");
    if (m.direction === "out") {
      showTyping(false);
      if (panel.hidden) launcher.textContent = T.open + " (" + T.newMessage + ")";
    }
  }

  function showTyping(on) {
    clearTimeout(typingHide);
    status.textContent = on ? T.typing : "";
    if (on) typingHide = setTimeout(function () { status.textContent = ""; }, 6000);
  }

  function newKey() {
    var a = new Uint8Array(12);
    (window.crypto || {}).getRandomValues ? crypto.getRandomValues(a) : a.forEach(function (_, i) { a[i] = Math.random() * 256; });
    return "w-" + Array.prototype.map.call(a, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  function wire(msg) {
    if (ws && ws.readyState === 1 && ready) { ws.send(JSON.stringify(msg)); return true; }
    return false;
  }

  function offlineForm() {
    offline.hidden = false; form.hidden = true; contact.hidden = true; endBtn.hidden = true;
    if (offline.childNodes.length) return;
    var note = el("p", {}, T.offline);
    var n = el("input", { type: "text", name: "name", autocomplete: "name", "aria-label": T.name, placeholder: T.name });
    var e = el("input", { type: "email", name: "email", autocomplete: "email", required: "", "aria-label": T.email.split("（")[0].split(" (")[0], placeholder: "you@example.com" });
    var t = el("textarea", { name: "message", required: "", rows: "5", "aria-label": T.message, placeholder: T.message });
    var b = el("button", { type: "submit" }, T.submit);
    var s = el("p", { role: "status", "aria-live": "polite" });
    [note, n, e, t, b, s].forEach(function (x) { offline.appendChild(x); });
    if (!panel.hidden) n.focus();
    offline.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!config.form) return;
      if (!e.value.trim() || !t.value.trim()) { s.textContent = T.required; return; }
      b.disabled = true;
      fetch(base + "/api/v1/forms/" + encodeURIComponent(config.form) + "/submissions", {
        method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit",
        body: JSON.stringify({ name: n.value, email: e.value, message: t.value, subject: t.value.trim().split("\n")[0].slice(0, 60) })
      }).then(function (r) {
        s.textContent = r.ok ? T.sent : T.failed; b.disabled = r.ok;
        if (r.ok) { t.value = ""; formSent = true; }
      }, function () { s.textContent = T.failed; b.disabled = false; });
    });
  }

  function onMessage(data) {
    var m;
    try { m = JSON.parse(data); } catch (e) { return; }
    if (m.type === "ready") {
      ready = true; attempt = 0; online = m.online; ended = false;
      state.token = m.token; save();
      status.textContent = "";
      if (m.email) summary.textContent = T.saved;
      if (!m.online && !(m.last_seq > 0) && config.form) offlineForm();
      pending.forEach(function (p) { ws.send(JSON.stringify({ type: "send", key: p.key, text: p.text })); });
    } else if (m.type === "message") {
      show(m);
    } else if (m.type === "ack") {
      for (var j = 0; j < pending.length; j++) {
        if (pending[j].key === m.key) { pending[j].el.classList.remove("wait"); pending.splice(j, 1); break; }
      }
      seen[m.seq] = true;
      if (m.seq > lastSeq) lastSeq = m.seq;
    } else if (m.type === "presence") {
      online = m.online;
      if (!online && lastSeq === 0 && config.form) offlineForm();
      else if (online && !offline.hidden && !formSent) {
        offline.hidden = true; form.hidden = false; contact.hidden = false; endBtn.hidden = false;
      }
    } else if (m.type === "typing") {
      showTyping(!!m.typing);
    } else if (m.type === "contact") {
      summary.textContent = T.saved; contact.open = false;
    } else if (m.type === "ended") {
      ended = true; status.textContent = T.ended; lastSeq = 0; seen = {};
    } else if (m.type === "error") {
      var text = m.code === "resource_exhausted" ? T.limited : m.field === "text" ? T.tooLong : T.failed;
      status.textContent = text;
      for (var i = 0; i < pending.length; i++) {
        if (pending[i].key === m.key) { pending[i].el.classList.add("bad"); pending.splice(i, 1); break; }
      }
    }
  }

  function connect() {
    clearTimeout(timer);
    if (ws && ws.readyState <= 1) return;
    ready = false;
    var sock = ws = new WebSocket(wsBase + "/chat/" + encodeURIComponent(config.key) + "/ws");
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "open", token: state.token || "", language: lang, after_seq: lastSeq }));
    };
    ws.onmessage = function (ev) { onMessage(ev.data); };
    ws.onclose = function () {
      if (sock !== ws) return; // an older socket, replaced
      ready = false;
      if (panel.hidden && !state.token) return;
      if (pending.length || !panel.hidden) status.textContent = T.reconnecting;
      var wait = Math.min(15000, 500 * Math.pow(2, attempt++)) * (0.75 + Math.random() / 2);
      timer = setTimeout(connect, wait);
    };
  }

  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.textContent = T.open;
    state.open = true; save();
    greet();
    connect();
    (offline.hidden ? input : offline.querySelector("input")).focus();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    state.open = false; save();
    launcher.focus();
  }

  launcher.addEventListener("click", function () { panel.hidden ? openPanel() : closePanel(); });
  closeBtn.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (ev) { if (ev.key === "Escape") closePanel(); });
  endBtn.addEventListener("click", function () { wire({ type: "end" }); });
  cForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    wire({ type: "contact", name: cName.value, email: cMail.value });
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if (ended) { ended = false; if (ws) ws.close(); }
    var p = { key: newKey(), text: text, el: bubble("in", text, T.you) };
    p.el.classList.add("wait");
    pending.push(p);
    input.value = "";
    if (!wire({ type: "send", key: p.key, text: text })) connect();
    typingSent = 0;
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (now - typingSent > 2000) { typingSent = now; wire({ type: "typing", typing: true }); }
    clearTimeout(typingStop);
    typingStop = setTimeout(function () { typingSent = 0; wire({ type: "typing", typing: false }); }, 4000);
  });

  function mount() {
    document.body.appendChild(host);
    if (state.token) connect(); // a returning visitor: what was said meanwhile
    if (state.open) openPanel();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
