/*! chatstatus widget: tells visitors, live, whether anyone is there to answer, and lets them chat.
 * Embed: <script src="https://HOST/widget.js" data-key="KEY" async></script>
 * Options: data-group="KEY", data-lang="en|cs", data-hide-when-offline.
 * Rendered in a shadow root so the page's CSS and ours never meet; every entry
 * point is wrapped so nothing is ever thrown into the host page. Server data is
 * only ever set as text or as checked http(s) URLs, never parsed as markup. */
(function () {
  "use strict";

  var MAX = 4000;
  var TEXTS = {
    en: {
      online: "Chat with us",
      offline: "We\u2019re offline \u2014 leave us a message",
      introOnline: "We\u2019re here. Send us a message and we\u2019ll reply shortly.",
      introOffline: "Nobody can answer right now. Leave us a message and we\u2019ll get back to you by e-mail.",
      back: "Back at {t}",
      name: "Your name (optional)",
      email: "Your e-mail",
      message: "Message",
      write: "Write a message\u2026",
      send: "Send",
      sending: "Sending\u2026",
      failed: "Not sent. Please try again.",
      invalid: "Please check the highlighted fields.",
      tooLong: "Your message is too long (4,000 characters at most).",
      tooMany: "Too many messages. Please try again later.",
      close: "Close",
      you: "You:",
      op: "Operator",
      auto: "Automatic message",
      bot: "Virtual assistant",
      typing: "{n} is typing\u2026",
      edit: "Edit",
      save: "Save",
      thanks: "Thank you! We\u2019ll reply to {e}.",
      helped: "That helped",
      person: "Talk to a person"
    },
    cs: {
      online: "Napi\u0161te n\u00e1m",
      offline: "Nejsme online \u2014 zanechte n\u00e1m zpr\u00e1vu",
      introOnline: "Jsme tu pro v\u00e1s. Napi\u0161te n\u00e1m a brzy odpov\u00edme.",
      introOffline: "Pr\u00e1v\u011b nikdo nem\u016f\u017ee odpov\u011bd\u011bt. Zanechte n\u00e1m zpr\u00e1vu a ozveme se e-mailem.",
      back: "Jsme zp\u011bt: {t}",
      name: "Va\u0161e jm\u00e9no (nepovinn\u00e9)",
      email: "V\u00e1\u0161 e-mail",
      message: "Zpr\u00e1va",
      write: "Napi\u0161te zpr\u00e1vu\u2026",
      send: "Odeslat",
      sending: "Odes\u00edl\u00e1m\u2026",
      failed: "Neodesl\u00e1no. Zkuste to pros\u00edm znovu.",
      invalid: "Zkontrolujte pros\u00edm ozna\u010den\u00e1 pole.",
      tooLong: "Zpr\u00e1va je p\u0159\u00edli\u0161 dlouh\u00e1 (nejv\u00fd\u0161e 4\u00a0000 znak\u016f).",
      tooMany: "P\u0159\u00edli\u0161 mnoho zpr\u00e1v. Zkuste to pros\u00edm pozd\u011bji.",
      close: "Zav\u0159\u00edt",
      you: "Vy:",
      op: "Oper\u00e1tor",
      auto: "Automatick\u00e1 zpr\u00e1va",
      bot: "Virtu\u00e1ln\u00ed asistent",
      typing: "{n} p\u00ed\u0161e\u2026",
      edit: "Upravit",
      save: "Ulo\u017eit",
      thanks: "D\u011bkujeme! Odpov\u00edme na {e}.",
      helped: "To mi pomohlo",
      person: "Chci mluvit s \u010dlov\u011bkem"
    }
  };

  var CSS =
    ":host{all:initial!important;position:fixed!important;right:20px!important;bottom:20px!important;" +
    "left:auto!important;top:auto!important;z-index:2147483000!important;display:block!important;" +
    "pointer-events:none!important;font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif!important;" +
    "color:#111827!important;text-align:left!important;direction:ltr!important}" +
    ":host([hidden]){display:none!important}" +
    "*,*::before,*::after{box-sizing:border-box}[hidden]{display:none!important}" +
    ".w{display:flex;flex-direction:column;align-items:flex-end}" +
    ".bubble,.panel{pointer-events:auto}" +
    ".bubble{display:inline-flex;align-items:center;gap:8px;margin:0;border:0;border-radius:999px;padding:12px 18px;" +
    "font:inherit;font-weight:600;color:#fff;background:#4b5563;cursor:pointer;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.2);transition:background-color .2s}" +
    "button:focus-visible{outline:3px solid #2563eb;outline-offset:2px}" +
    ".dot{flex:none;width:10px;height:10px;border-radius:50%;background:#d1d5db}" +
    ".on .bubble,.on .head{background:#15803d}.on .dot{background:#86efac;box-shadow:0 0 0 3px rgba(134,239,172,.35)}" +
    ".n{padding:0 7px;border-radius:10px;background:#dc2626;font-size:12px;line-height:20px}" +
    ".panel{display:flex;flex-direction:column;width:360px;max-width:calc(100vw - 40px);height:540px;" +
    "max-height:calc(100vh - 110px);overflow:hidden;margin:0 0 12px;" +
    "background:#fff;border-radius:12px;box-shadow:0 10px 30px rgba(0,0,0,.22)}" +
    ".head{display:flex;align-items:center;justify-content:space-between;gap:8px;padding:12px 16px;" +
    "background:#4b5563;color:#fff}" +
    ".title{margin:0;font-size:15px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}" +
    ".x{flex:none;border:0;background:transparent;color:inherit;font:inherit;font-size:22px;line-height:1;" +
    "padding:0 4px;cursor:pointer}" +
    ".body{flex:1;overflow-y:auto;padding:14px 16px}" +
    ".intro{margin:0 0 12px;color:#374151}.back{margin:-4px 0 12px;font-weight:600}" +
    ".back:empty,.note:empty,.st:empty,.cnt:empty,.n:empty{display:none}" +
    ".log{display:flex;flex-direction:column;gap:8px}" +
    ".m{align-self:flex-start;max-width:85%;padding:8px 12px;border-radius:14px 14px 14px 4px;background:#f3f4f6;" +
    "overflow-wrap:anywhere}.tx{margin:0;white-space:pre-wrap}a{color:#1d4ed8}" +
    ".v{align-self:flex-end;border-radius:14px 14px 4px;background:#1f2937;color:#fff}.v a{color:inherit}" +
    ".a{align-self:stretch;max-width:none;border-radius:8px;background:#fffbeb;border:1px solid #fcd34d;color:#78350f}" +
    ".b{background:#eff6ff;border:1px solid #bfdbfe}" +
    // The bot's answer: "That helped" and, while someone is online, "Talk to a person".
    ".fb{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}.fb button{font:inherit;font-size:12px;cursor:pointer;" +
    "border:1px solid #bfdbfe;border-radius:999px;background:#fff;color:#1e40af;padding:2px 10px}.off .tp{display:none}" +
    ".who{display:flex;align-items:center;gap:6px;margin:0 0 2px;font-size:12px;font-weight:600;opacity:.8}" +
    ".av{width:22px;height:22px;border-radius:50%}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}" +
    ".st{display:block;font-size:12px;opacity:.8}.v .err{color:#fecaca;opacity:1}" +
    ".ed{margin:4px 0 0;border:1px solid;border-radius:6px;background:none;color:inherit;font:inherit;font-size:12px}" +
    ".ask{margin:10px 0 2px;color:#111827}.ask label{margin:0 0 8px}.ask input{padding:6px 8px}" +
    ".typing{margin:8px 0 0;font-size:13px;font-style:italic;color:#6b7280}" +
    "label{display:block;margin:0 0 10px;font-size:13px;font-weight:600;color:#374151}" +
    "input,textarea{display:block;width:100%;margin:4px 0 0;padding:8px 10px;border:1px solid #d1d5db;" +
    "border-radius:8px;font:inherit;font-weight:400;color:#111827;background:#fff}" +
    "input:focus,textarea:focus{outline:2px solid #2563eb;outline-offset:0;border-color:#2563eb}" +
    "[aria-invalid=true]{border-color:#b91c1c}" +
    ".note{margin:0 0 10px;font-size:13px}.ok{margin:0;color:#15803d}.err{color:#b91c1c}" +
    ".send{display:block;margin:0 0 0 auto;padding:7px 16px;border:0;border-radius:8px;background:#111827;" +
    "color:#fff;font:inherit;font-weight:600;cursor:pointer}" +
    ".compose{display:flex;flex-wrap:wrap;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid #e5e7eb}" +
    ".compose textarea{flex:1;width:auto;margin:0;resize:none;height:42px;max-height:120px}" +
    ".compose .send{padding:10px 14px}" +
    ".compose .note,.cnt{flex-basis:100%;margin:0}.cnt{font-size:12px;color:#6b7280;text-align:right}" +
    "@media (max-width:480px){:host{right:12px!important;bottom:12px!important;left:12px!important}" +
    ".panel{width:100%;max-width:none}.bubble{padding:10px 14px;font-size:13px}}";

  function safe(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        /* never into the host page */
      }
    };
  }

  function lang2(value) {
    var code = String(value || "").slice(0, 2).toLowerCase();
    return TEXTS[code] ? code : "";
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    // Data only ever goes in as text, never as markup.
    if (text != null) node.textContent = text;
    return node;
  }

  function field(label, tag, name, attrs) {
    var wrap = el("label");
    var text = el("span");
    var input = el(tag);
    input.name = name;
    input.required = true;
    for (var key in attrs) input.setAttribute(key, attrs[key]);
    wrap.appendChild(text);
    wrap.appendChild(input);
    label[name] = text;
    return { wrap: wrap, input: input };
  }

  function backAt(iso, lang) {
    var when = new Date(iso);
    var now = new Date();
    if (isNaN(when) || when <= now) return "";
    var options = { hour: "numeric", minute: "2-digit" };
    if (when.toDateString() !== now.toDateString()) options.weekday = "long";
    if (when - now > 6 * 864e5) {
      options.day = "numeric";
      options.month = "long";
    }
    // The visitor's own time zone: Intl's default.
    return new Intl.DateTimeFormat(lang, options).format(when);
  }

  function uuid() {
    // randomUUID exists only in secure contexts; many shops still serve pages over http.
    if (crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var hex = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
    return hex.replace(/(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");
  }

  function httpUrl(value, base) {
    try {
      var url = new URL(value, base);
      return /^https?:$/.test(url.protocol) ? url.href : "";
    } catch (e) {
      return "";
    }
  }

  // Links are built from text with DOM APIs, never parsed from markup.
  function linkify(parent, text) {
    var re = /https?:\/\/[^\s<>"]+/gi;
    var at = 0;
    var found;
    while ((found = re.exec(text))) {
      var href = found[0].replace(/[.,;:!?'")\]]+$/, "");
      var url = httpUrl(href);
      if (!url) continue;
      parent.append(text.slice(at, found.index));
      var link = el("a", null, href);
      link.href = url;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      parent.append(link);
      re.lastIndex = at = found.index + href.length;
    }
    parent.append(text.slice(at));
  }

  function start(script) {
    var key = script.getAttribute("data-key");
    if (!key || !script.src || !document.documentElement.attachShadow) return;
    var origin = new URL(script.src, location.href).origin;
    var group = script.getAttribute("data-group") || "";
    var forcedLang = lang2(script.getAttribute("data-lang"));
    var hideOff = script.hasAttribute("data-hide-when-offline") && script.getAttribute("data-hide-when-offline") !== "false";
    var base = origin + "/widget/v1/" + encodeURIComponent(key);
    var query = group ? "?group=" + encodeURIComponent(group) : "";

    var state = null;
    var version = -1;
    var ws = null;
    var failures = 0;
    var wsTimer = 0;
    var pollTimer = 0;
    var polling = false;
    var socketsRefused = false;
    var gone = false;

    // --- chat state: the token and the outbox (messages not yet acknowledged) live in
    // localStorage, shared by the site's tabs; a memory stand-in where storage is blocked.
    var ns = "chatstatus:" + key + ":";
    var memory = {};
    var conv = null;
    var msgs = {}; // by id
    var lastSeq = 0;
    var epoch = 0; // bumped when conv becomes another conversation
    var nodes = {}; // rendered messages by "c"+client_id (the visitor's) or "i"+id
    var synced = false;
    var flushing = false;
    var retryTimer = 0;
    var tries = 0;
    var typingTimer = 0;
    var typingId = null;
    var unread = 0;
    var thanked = false;

    function sget(name) {
      try {
        return localStorage.getItem(ns + name);
      } catch (e) {
        return memory[name] || null;
      }
    }

    function sset(name, value) {
      memory[name] = value;
      try {
        if (value == null) localStorage.removeItem(ns + name);
        else localStorage.setItem(ns + name, value);
      } catch (e) {
        /* memory only */
      }
    }

    var token = sget("visitor");

    // {client_id: {c: client_id, b: body, t: order, e: error awaiting an edit}}, changed
    // entry by entry so that two tabs never drop each other's messages.
    function box() {
      try {
        return JSON.parse(sget("outbox")) || {};
      } catch (e) {
        return {};
      }
    }

    function boxSet(id, entry) {
      var all = box();
      if (!entry && !all[id]) return;
      if (entry) all[id] = entry;
      else delete all[id];
      sset("outbox", JSON.stringify(all));
    }

    // --- DOM ---------------------------------------------------------------
    var host = document.createElement("chatstatus-widget");
    host.hidden = true;
    var root = host.attachShadow({ mode: "open" });
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      // A constructed sheet also works under a page CSP without 'unsafe-inline'.
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", null, CSS));
    }
    var label = {};
    var wrap = el("div", "w off");
    var panelId = "cs-panel";
    var panel = el("section", "panel");
    panel.id = panelId;
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    var head = el("div", "head");
    var title = el("p", "title");
    var closeButton = el("button", "x", "\u00d7");
    closeButton.type = "button";
    head.append(title, closeButton);
    var body = el("div", "body");
    var intro = el("p", "intro");
    var back = el("p", "back");
    var log = el("div", "log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    var typing = el("p", "typing");
    typing.hidden = true;
    body.append(intro, back, log, typing);

    var compose = el("form", "compose");
    var input = el("textarea");
    input.name = "message";
    var send = el("button", "send");
    var count = el("span", "cnt");
    var note = el("p", "note");
    note.setAttribute("role", "status");
    compose.append(input, send, count, note);

    // Shown under an automatic message that asks for an e-mail while the visitor has given none.
    var ask = el("div", "ask");
    var mailForm = el("form");
    var emailField = field(label, "input", "email", { type: "email", maxlength: "254", autocomplete: "email" });
    var nameField = field(label, "input", "name", { maxlength: "100", autocomplete: "name" });
    nameField.input.required = false;
    var mailNote = el("p", "note");
    mailNote.setAttribute("role", "status");
    var mailSend = el("button", "send");
    var thanks = el("p", "ok");
    mailForm.append(emailField.wrap, nameField.wrap, mailNote, mailSend);
    ask.append(mailForm, thanks);

    panel.append(head, body, compose);
    var bubble = el("button", "bubble");
    bubble.type = "button";
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-controls", panelId);
    var bubbleText = el("span", "label");
    var badge = el("span", "n");
    bubble.append(el("span", "dot"), bubbleText, badge);
    wrap.append(panel, bubble);
    root.appendChild(wrap);

    function lang() {
      return forcedLang || lang2(state && state.language) || "en";
    }

    function texts() {
      return TEXTS[lang()];
    }

    function render() {
      if (!state) return;
      var t = texts();
      var online = state.status === "online";
      wrap.className = "w " + (online ? "on" : "off");
      wrap.setAttribute("data-status", online ? "online" : "offline");
      bubbleText.textContent = online ? t.online : t.offline;
      title.textContent = state.account_name || (online ? t.online : t.offline);
      panel.setAttribute("aria-label", online ? t.online : t.offline);
      intro.textContent = online ? t.introOnline : t.introOffline;
      var when = !online && state.reason === "closed" && state.next_change_at ? backAt(state.next_change_at, lang()) : "";
      back.textContent = when ? t.back.replace("{t}", when) : "";
      closeButton.setAttribute("aria-label", t.close);
      input.setAttribute("aria-label", t.message);
      input.placeholder = t.write;
      label.name.textContent = t.name;
      label.email.textContent = t.email;
      send.textContent = t.send;
      mailSend.textContent = t.save;
      badge.textContent = unread || "";
      // Never hide a panel the visitor is writing in, nor a conversation they may get replies in.
      host.hidden = hideOff && !online && panel.hidden && !conv && !Object.keys(box()).length;
    }

    function apply(message) {
      if (!message || typeof message.version !== "number" || message.version <= version) return;
      var was = lang();
      version = message.version;
      state = message;
      render();
      if (lang() !== was) draw();
    }

    function toggle(open) {
      panel.hidden = !open;
      bubble.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) {
        unread = 0;
        body.scrollTop = body.scrollHeight;
        input.focus();
      } else bubble.focus();
      render();
    }

    bubble.addEventListener("click", safe(function () {
      toggle(panel.hidden);
    }));
    closeButton.addEventListener("click", safe(function () {
      toggle(false);
    }));
    panel.addEventListener("keydown", safe(function (event) {
      if (event.key === "Escape") toggle(false);
    }));

    // --- the conversation ----------------------------------------------------------
    function api(method, path, data) {
      var headers = {};
      if (data) headers["Content-Type"] = "application/json";
      if (token) headers["X-Visitor-Token"] = token;
      return fetch(base + path, {
        method: method,
        mode: "cors",
        credentials: "omit",
        cache: "no-store",
        headers: headers,
        body: data && JSON.stringify(data)
      }).then((r) =>
        r
          .json()
          .catch(() => {})
          .then((j) => ({ s: r.status, j: j || {}, h: r.headers }))
      );
    }

    function hello() {
      if (token && ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "visitor", token: token }));
    }

    function setToken(value) {
      if (value === token) return;
      token = value;
      sset("visitor", value);
      hello();
    }

    // True when conv becomes another conversation: its messages are then reloaded.
    function setConv(next) {
      var changed = !next || !conv || next.id !== conv.id;
      if (changed) {
        msgs = {};
        lastSeq = 0;
        epoch++;
        thanked = mailForm.hidden = false;
      }
      conv = next || null;
      return changed;
    }

    function add(m) {
      if (!m || m.id == null || msgs[m.id]) return;
      msgs[m.id] = m;
      if (m.seq > lastSeq) lastSeq = m.seq;
      if (m.author === "visitor" && m.client_id) boxSet(m.client_id);
      if (m.author === "operator" && m.operator && m.operator.id === typingId) stopTyping();
    }

    function sync(full) {
      if (!token) return flush();
      var at = epoch;
      var after = full || !conv ? 0 : lastSeq;
      return api("GET", "/conversations/current" + (after ? "?after=" + after : ""))
        .then((a) => {
          if (at !== epoch) return; // a write meanwhile answered with a newer conversation
          synced = true;
          if (a.s === 200) {
            if (setConv(a.j.conversation) && after) return sync(true);
            (a.j.messages || []).forEach(add);
          } else if (a.s === 404) setConv(null);
          draw();
        })
        .catch(() => {})
        .then(flush);
    }

    function later(ms) {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(safe(flush), ms);
    }

    function backoff() {
      return Math.min(60, Math.pow(2, tries++)) * 1000;
    }

    // Sends the oldest unacknowledged message, one at a time to keep their order, with
    // the same client_id on every try: the server answers a repeat with the message it has.
    function flush() {
      if (flushing || gone) return;
      clearTimeout(retryTimer);
      var next = null;
      Object.values(box()).forEach((p) => {
        if (!p.e && (!next || p.t < next.t)) next = p;
      });
      if (!next) return;
      flushing = true;
      var c = conv;
      var data = { body: next.b, client_id: next.c };
      if (!c) {
        if (group) data.group = group;
        // Path only: query strings can carry visitors' private tokens.
        data.page_url = (location.origin + location.pathname).slice(0, 500);
        data.time_zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      }
      api("POST", c ? "/conversations/" + encodeURIComponent(c.id) + "/messages" : "/conversations", data)
        .then((a) => {
          flushing = false;
          var s = a.s;
          var j = a.j;
          var wait = 0;
          if (s === 200 || s === 201) {
            tries = 0;
            if (c) {
              // Answered past a gap (said while the socket was away): fetch what is missing.
              if (j.seq > lastSeq + 1) sync();
              add(j);
            } else {
              if (j.visitor_token) setToken(j.visitor_token);
              // It may hold messages this page has not seen (a new one: pushed before the socket named us).
              if (setConv(j.conversation)) sync(true);
              add(j.message);
            }
            boxSet(next.c);
          } else if (s === 404 && c) {
            // Not this visitor's conversation (deleted, or another account's token): start afresh.
            setToken(null);
            setConv(null);
          } else if (s === 429) wait = 1000 * Math.min(3600, +a.h.get("Retry-After") || 10);
          else if (s >= 400 && s < 500 && s !== 408) {
            var t = texts();
            var fields = j.fields || {};
            next.e = (fields.body && String(fields.body[0])) || (s === 413 ? t.tooLong : t.failed);
            if (box()[next.c]) boxSet(next.c, next);
          } else wait = backoff();
          draw();
          if (wait) later(wait);
          else flush();
        })
        .catch(() => {
          flushing = false;
          later(backoff());
        });
    }

    function say(text, kind) {
      note.textContent = text;
      note.className = "note " + (kind || "");
    }

    function length() {
      return Array.from(input.value).length; // code points, as the server counts
    }

    function submit() {
      var text = input.value.trim();
      if (!text) return;
      if (length() > MAX) {
        input.setAttribute("aria-invalid", "true");
        return say(texts().tooLong, "err");
      }
      var id = uuid();
      boxSet(id, { c: id, b: text, t: Date.now() });
      input.value = "";
      typed();
      draw();
      flush();
    }

    function typed() {
      var n = length();
      count.textContent = n > MAX - 500 ? n + " / " + MAX : "";
      count.className = n > MAX ? "cnt err" : "cnt";
      input.setAttribute("aria-invalid", n > MAX);
      say("");
      // Grows with its lines up to the CSS max-height.
      input.style.height = "";
      if (input.scrollHeight > input.clientHeight) input.style.height = input.scrollHeight + 2 + "px";
    }

    compose.addEventListener("submit", safe((event) => {
      event.preventDefault();
      submit();
    }));
    input.addEventListener("keydown", safe((event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    }));
    input.addEventListener("input", safe(typed));

    function bubbleFor(m, pending) {
      var author = pending ? "visitor" : m.author;
      var node = el("div", "m " + ({ visitor: "v", operator: "o", bot: "b" }[author] || "a"));
      var who = el("div", pending || author === "visitor" ? "sr" : "who");
      if (author === "operator") {
        var operator = m.operator || {};
        var avatar = operator.avatar_url && httpUrl(operator.avatar_url, origin);
        if (avatar) {
          var img = el("img", "av");
          img.alt = "";
          img.src = avatar;
          who.append(img);
        }
        who.append(operator.display_name || texts().op);
      } else node.who = who;
      var text = el("p", "tx");
      linkify(text, String(pending ? m.b : m.body));
      node.append(who, text);
      if (m.faq && !pending) {
        node.fb = el("div", "fb");
        ["helpful", "talk_to_person"].forEach((v, i) => {
          var b = el("button", i ? "tp" : "");
          b.type = "button";
          b.addEventListener("click", safe(() => {
            var data = {};
            data[v] = true;
            api("POST", "/conversations/" + m.conversation_id + "/messages/" + m.id + "/feedback", data).then((r) => {
              if (r.s === 200 && msgs[m.id]) msgs[m.id].faq = r.j.faq;
              draw();
            });
          }));
          node.fb.append(b);
        });
        node.append(node.fb);
      }
      if (author === "visitor") {
        node.st = el("span", "st");
        node.ed = el("button", "ed");
        node.ed.type = "button";
        node.ed.addEventListener("click", safe(() => {
          var entry = box()[m.c];
          if (!entry) return;
          input.value = entry.b;
          boxSet(m.c);
          typed();
          draw();
          input.focus();
        }));
        node.append(node.st, node.ed);
      }
      return node;
    }

    // Brings the log in line with msgs (by seq) and the outbox, touching only what
    // changed: the live region then announces each new message once.
    function draw() {
      var t = texts();
      var list = Object.values(msgs).sort((x, y) => x.seq - y.seq);
      var acked = {};
      list.forEach((m) => (acked[m.client_id] = 1));
      var pending = Object.values(box())
        .filter((p) => !acked[p.c])
        .sort((x, y) => x.t - y.t);
      var keep = {};
      var at = log.firstChild;
      var added = false;
      var asking = null;
      list.concat(pending).forEach((m) => {
        var isPending = m.id == null;
        var k = isPending ? "c" + m.c : m.author === "visitor" && m.client_id ? "c" + m.client_id : "i" + m.id;
        var node = nodes[k];
        if (!node) {
          node = nodes[k] = bubbleFor(m, isPending);
          added = true;
        }
        keep[k] = 1;
        if (node.who) node.who.textContent = m.author === "bot" ? t.bot : isPending || m.author === "visitor" ? t.you : t.auto;
        if (node.st) {
          node.st.textContent = isPending ? m.e || t.sending : "";
          node.st.className = m.e ? "st err" : "st";
          node.ed.textContent = t.edit;
          node.ed.hidden = !m.e;
        }
        if (node.fb) {
          node.fb.hidden = !!m.faq.feedback;
          node.fb.firstChild.textContent = t.helped;
          node.fb.lastChild.textContent = t.person;
        }
        if (m.asks_email) asking = node;
        if (node === at) at = at.nextSibling;
        else log.insertBefore(node, at);
      });
      for (var k in nodes) {
        if (!keep[k]) {
          nodes[k].remove();
          delete nodes[k];
        }
      }
      // Once answered, the thanks stays under the message that asked.
      if (thanked) asking = ask.parentNode;
      // Kept while the e-mail is on its way (its push comes first).
      else if (conv && conv.visitor && conv.visitor.email && !mailSend.disabled) asking = null;
      if (!asking) ask.remove();
      else if (ask.parentNode !== asking) asking.append(ask);
      if (added) body.scrollTop = body.scrollHeight;
      render();
    }

    function stopTyping() {
      clearTimeout(typingTimer);
      typingId = null;
      typing.hidden = true;
    }

    // The status socket's frames about this visitor's conversation.
    function chat(frame) {
      var m = frame.message;
      var t = texts();
      if (frame.type === "message" && m) {
        // Another conversation, or a gap in seq: fetch what is missing.
        if (!conv || m.conversation_id !== conv.id) return sync(true);
        if (m.seq > lastSeq + 1) sync();
        if (!msgs[m.id] && m.author !== "visitor" && panel.hidden) unread++;
        if (msgs[m.id] && m.faq) msgs[m.id].faq = m.faq;
        add(m);
        draw();
      } else if (frame.type === "conversation" && frame.conversation) {
        if (setConv(frame.conversation)) sync(true);
        draw();
      } else if (frame.type === "typing" && frame.operator) {
        typingId = frame.operator.id;
        typing.textContent = t.typing.replace("{n}", frame.operator.display_name || t.op);
        typing.hidden = false;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(safe(stopTyping), 6000);
        body.scrollTop = body.scrollHeight;
      }
    }

    function mailSay(text) {
      mailNote.textContent = text;
      mailNote.className = "note err";
    }

    mailForm.addEventListener("submit", safe((event) => {
      event.preventDefault();
      if (mailSend.disabled) return;
      var t = texts();
      var data = { email: emailField.input.value.trim() };
      var name = nameField.input.value.trim();
      if (name) data.name = name;
      mailSend.disabled = true;
      mailSay("");
      api("PATCH", "/visitor", data)
        .then((a) => {
          var fields = a.j.fields || {};
          var visitor = a.j.visitor || data;
          emailField.input.setAttribute("aria-invalid", !!fields.email);
          nameField.input.setAttribute("aria-invalid", !!fields.name);
          if (a.s === 200) {
            if (a.j.visitor_token) setToken(a.j.visitor_token);
            if (conv) conv.visitor = visitor;
            thanked = mailForm.hidden = true;
            thanks.textContent = t.thanks.replace("{e}", visitor.email);
          } else if (a.s === 404) {
            setToken(null);
            setConv(null);
          } else mailSay(a.s === 400 ? t.invalid : a.s === 429 ? t.tooMany : t.failed);
          draw();
        })
        .catch(() => mailSay(t.failed))
        .then(() => (mailSend.disabled = false));
    }));

    // A token issued in another tab: this tab is the same visitor from now on.
    window.addEventListener("storage", safe((event) => {
      if (event.key === ns + "visitor" && event.newValue !== token) {
        token = event.newValue;
        hello();
        sync(true);
      } else if (event.key === ns + "outbox") draw();
    }));

    // --- live status ---------------------------------------------------------
    function stop() {
      gone = true;
      clearTimeout(wsTimer);
      clearTimeout(pollTimer);
      clearTimeout(retryTimer);
      if (ws) ws.close();
      if (host.parentNode) host.parentNode.removeChild(host);
    }

    function poll() {
      if (gone) return;
      fetch(base + "/status" + query, { mode: "cors", credentials: "omit", cache: "no-cache" })
        .then(function (response) {
          // The browser's cache revalidates with If-None-Match; a 304 arrives here as its cached 200.
          if (response.status === 404) return stop();
          if (response.ok) return response.json().then(safe(apply));
        })
        .catch(function () {});
    }

    function schedulePoll() {
      clearTimeout(pollTimer);
      if (!polling || gone) return;
      pollTimer = setTimeout(safe(function () {
        if (!document.hidden) {
          poll();
          // Without a socket, replies arrive with the status poll.
          if (conv) sync();
        }
        schedulePoll();
      }), 10000 + Math.random() * 5000);
    }

    function startPolling() {
      if (polling) return;
      polling = true;
      poll();
      schedulePoll();
    }

    function stopPolling() {
      polling = false;
      clearTimeout(pollTimer);
    }

    function connect() {
      if (gone || socketsRefused) return;
      clearTimeout(wsTimer);
      var socket;
      try {
        socket = new WebSocket(origin.replace(/^http/, "ws") + "/ws/widget/" + encodeURIComponent(key) + "/" + query);
      } catch (e) {
        return closed({ code: 1006 });
      }
      ws = socket;
      socket.onopen = safe(function () {
        // Identify, then fill any gap the socket was away for and re-send what is unacknowledged.
        hello();
        if (token) sync();
        else flush();
      });
      socket.onmessage = safe(function (event) {
        var message = JSON.parse(event.data);
        if (message && message.type === "status") {
          failures = 0;
          stopPolling();
          apply(message);
        } else if (message) chat(message);
      });
      socket.onclose = safe(function (event) {
        if (ws === socket) ws = null;
        closed(event);
      });
    }

    function closed(event) {
      if (gone) return;
      if (event.code === 4404) return stop(); // unknown key or group: nothing to show
      if (!synced) sync(); // the conversation does not wait for a socket
      if (event.code === 4403) {
        // This page's origin may not hold a live socket; the public status still answers.
        socketsRefused = true;
        return startPolling();
      }
      failures += 1;
      // Exponential backoff with jitter, so a server restart is not met by every
      // widget at once. A socket that was working and dropped (the server
      // restarted under thousands of pages) comes back at a random moment of
      // the next 0.5–8 s: every visitor retrying within the same second would
      // keep the restarted server too busy to finish any handshake.
      var delay = Math.min(60000, 1000 * Math.pow(2, failures - 1)) * (0.5 + Math.random());
      if (failures === 1 && version >= 0) delay = 500 + Math.random() * 7500;
      if (event.code === 1012) {
        // A web process restarting on purpose: the others are up. Ask for the
        // status at once (cheap) and come back within 3 s.
        delay = 200 + Math.random() * 2800;
        poll();
      }
      wsTimer = setTimeout(safe(connect), event.code === 4429 ? 60000 * (0.5 + Math.random()) : delay);
      // Refused for too many sockets from this address: poll meanwhile, so the status stays true.
      if (failures >= 3 || event.code === 4429) startPolling();
      else if (version < 0) poll();
    }

    window.addEventListener("online", safe(function () {
      if (!ws && !gone) connect();
      flush();
    }));
    document.addEventListener("visibilitychange", safe(function () {
      if (polling && !document.hidden) poll();
    }));

    function mount() {
      (document.body || document.documentElement).appendChild(host);
      draw(); // what is still in the outbox shows at once as "sending…"
      connect();
    }

    if (document.body) mount();
    else document.addEventListener("DOMContentLoaded", safe(mount));
  }

  try {
    var script = document.currentScript;
    if (!script || !script.hasAttribute("data-key")) {
      var candidates = document.querySelectorAll('script[data-key][src*="widget.js"]');
      for (var i = 0; i < candidates.length && !script; i++) {
        if (!candidates[i].hasAttribute("data-chatstatus")) script = candidates[i];
      }
    }
    if (script && !script.hasAttribute("data-chatstatus")) {
      script.setAttribute("data-chatstatus", "started");
      start(script);
    }
  } catch (e) {
    /* never into the host page */
  }
})();
