/*! chatstatus widget: tells visitors, live, whether anyone is there to answer.
 * Embed: <script src="https://HOST/widget.js" data-key="KEY" async></script>
 * Options: data-group="KEY", data-lang="en|cs", data-hide-when-offline.
 * Rendered in a shadow root so the page's CSS and ours never meet; every entry
 * point is wrapped so nothing is ever thrown into the host page. */
(function () {
  "use strict";

  var TEXTS = {
    en: {
      online: "Chat with us",
      offline: "We\u2019re offline \u2014 leave us a message",
      introOnline: "We\u2019re here. Send us a message and we\u2019ll reply shortly.",
      introOffline: "Nobody can answer right now. Leave us a message and we\u2019ll get back to you by e-mail.",
      back: "Back at {t}",
      name: "Your name",
      email: "Your e-mail",
      message: "Message",
      send: "Send",
      sending: "Sending\u2026",
      sent: "Thank you! We\u2019ll get back to you soon.",
      failed: "Sorry, your message could not be sent. Please try again.",
      invalid: "Please check the highlighted fields.",
      tooLong: "Your message is too long.",
      tooMany: "Too many messages. Please try again later.",
      close: "Close"
    },
    cs: {
      online: "Napi\u0161te n\u00e1m",
      offline: "Nejsme online \u2014 zanechte n\u00e1m zpr\u00e1vu",
      introOnline: "Jsme tu pro v\u00e1s. Napi\u0161te n\u00e1m a brzy odpov\u00edme.",
      introOffline: "Pr\u00e1v\u011b nikdo nem\u016f\u017ee odpov\u011bd\u011bt. Zanechte n\u00e1m zpr\u00e1vu a ozveme se e-mailem.",
      back: "Jsme zp\u011bt: {t}",
      name: "Va\u0161e jm\u00e9no",
      email: "V\u00e1\u0161 e-mail",
      message: "Zpr\u00e1va",
      send: "Odeslat",
      sending: "Odes\u00edl\u00e1m\u2026",
      sent: "D\u011bkujeme! Brzy se v\u00e1m ozveme.",
      failed: "Zpr\u00e1vu se nepoda\u0159ilo odeslat. Zkuste to pros\u00edm znovu.",
      invalid: "Zkontrolujte pros\u00edm ozna\u010den\u00e1 pole.",
      tooLong: "Zpr\u00e1va je p\u0159\u00edli\u0161 dlouh\u00e1.",
      tooMany: "P\u0159\u00edli\u0161 mnoho zpr\u00e1v. Zkuste to pros\u00edm pozd\u011bji.",
      close: "Zav\u0159\u00edt"
    }
  };

  var CSS =
    ":host{all:initial!important;position:fixed!important;right:20px!important;bottom:20px!important;" +
    "left:auto!important;top:auto!important;z-index:2147483000!important;display:block!important;" +
    "pointer-events:none!important;font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif!important;" +
    "color:#111827!important;text-align:left!important;direction:ltr!important}" +
    ":host([hidden]){display:none!important}" +
    "*,*::before,*::after{box-sizing:border-box}" +
    ".w{display:flex;flex-direction:column;align-items:flex-end}" +
    ".bubble,.panel{pointer-events:auto}" +
    ".bubble{display:inline-flex;align-items:center;gap:8px;margin:0;border:0;border-radius:999px;padding:12px 18px;" +
    "font:inherit;font-weight:600;color:#fff;background:#4b5563;cursor:pointer;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.2);transition:background-color .2s}" +
    ".bubble:focus-visible,.x:focus-visible,.send:focus-visible{outline:3px solid #2563eb;outline-offset:2px}" +
    ".dot{flex:none;width:10px;height:10px;border-radius:50%;background:#d1d5db}" +
    ".on .bubble,.on .head{background:#15803d}.on .dot{background:#86efac;box-shadow:0 0 0 3px rgba(134,239,172,.35)}" +
    ".panel{width:320px;max-width:calc(100vw - 40px);max-height:calc(100vh - 110px);overflow:auto;margin:0 0 12px;" +
    "background:#fff;border-radius:12px;box-shadow:0 10px 30px rgba(0,0,0,.22)}" +
    ".panel[hidden]{display:none}" +
    ".head{display:flex;align-items:center;justify-content:space-between;gap:8px;padding:12px 16px;" +
    "background:#4b5563;color:#fff}" +
    ".title{margin:0;font-size:15px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}" +
    ".x{flex:none;border:0;background:transparent;color:inherit;font:inherit;font-size:22px;line-height:1;" +
    "padding:0 4px;cursor:pointer}" +
    ".body{padding:14px 16px 16px}" +
    ".intro{margin:0 0 12px;color:#374151}" +
    ".back{margin:-4px 0 12px;font-weight:600;color:#111827}.back:empty{display:none}" +
    "label{display:block;margin:0 0 10px;font-size:13px;font-weight:600;color:#374151}" +
    "input,textarea{display:block;width:100%;margin:4px 0 0;padding:8px 10px;border:1px solid #d1d5db;" +
    "border-radius:8px;font:inherit;font-weight:400;color:#111827;background:#fff}" +
    "textarea{resize:vertical;min-height:84px}" +
    "input:focus,textarea:focus{outline:2px solid #2563eb;outline-offset:0;border-color:#2563eb}" +
    "[aria-invalid=true]{border-color:#b91c1c}" +
    ".note{margin:0 0 10px;font-size:13px}.note:empty{display:none}.ok{color:#15803d}.err{color:#b91c1c}" +
    ".send{display:block;width:100%;margin:0;padding:10px;border:0;border-radius:8px;background:#111827;" +
    "color:#fff;font:inherit;font-weight:600;cursor:pointer}.send:disabled{opacity:.6;cursor:default}" +
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
    var busy = false;

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
    head.appendChild(title);
    head.appendChild(closeButton);
    var body = el("div", "body");
    var intro = el("p", "intro");
    var back = el("p", "back");
    var form = el("form");
    var nameField = field(label, "input", "name", { maxlength: "100", autocomplete: "name" });
    var emailField = field(label, "input", "email", { type: "email", maxlength: "254", autocomplete: "email" });
    var messageField = field(label, "textarea", "message", { maxlength: "5000", rows: "4" });
    var note = el("p", "note");
    note.setAttribute("role", "status");
    note.setAttribute("aria-live", "polite");
    var send = el("button", "send");
    send.type = "submit";
    form.appendChild(nameField.wrap);
    form.appendChild(emailField.wrap);
    form.appendChild(messageField.wrap);
    form.appendChild(note);
    form.appendChild(send);
    body.appendChild(intro);
    body.appendChild(back);
    body.appendChild(form);
    panel.appendChild(head);
    panel.appendChild(body);
    var bubble = el("button", "bubble");
    bubble.type = "button";
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-controls", panelId);
    var bubbleText = el("span", "label");
    bubble.appendChild(el("span", "dot"));
    bubble.appendChild(bubbleText);
    wrap.appendChild(panel);
    wrap.appendChild(bubble);
    root.appendChild(wrap);

    function texts() {
      return TEXTS[forcedLang || lang2(state && state.language) || "en"];
    }

    function render() {
      if (!state) return;
      var t = texts();
      var online = state.status === "online";
      var lang = forcedLang || lang2(state.language) || "en";
      wrap.className = "w " + (online ? "on" : "off");
      wrap.setAttribute("data-status", online ? "online" : "offline");
      bubbleText.textContent = online ? t.online : t.offline;
      title.textContent = state.account_name || (online ? t.online : t.offline);
      panel.setAttribute("aria-label", online ? t.online : t.offline);
      intro.textContent = online ? t.introOnline : t.introOffline;
      var when = !online && state.reason === "closed" && state.next_change_at ? backAt(state.next_change_at, lang) : "";
      back.textContent = when ? t.back.replace("{t}", when) : "";
      closeButton.setAttribute("aria-label", t.close);
      label.name.textContent = t.name;
      label.email.textContent = t.email;
      label.message.textContent = t.message;
      send.textContent = busy ? t.sending : t.send;
      // Never hide a panel the visitor is writing in.
      host.hidden = hideOff && !online && panel.hidden;
    }

    function apply(message) {
      if (!message || typeof message.version !== "number" || message.version <= version) return;
      version = message.version;
      state = message;
      render();
    }

    function toggle(open) {
      panel.hidden = !open;
      bubble.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) nameField.input.focus();
      else bubble.focus();
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

    function say(text, kind) {
      note.textContent = text;
      note.className = "note " + (kind || "");
    }

    function markInvalid(fields) {
      var inputs = { name: nameField.input, email: emailField.input, message: messageField.input };
      for (var name in inputs) inputs[name].setAttribute("aria-invalid", fields && fields[name] ? "true" : "false");
    }

    function setBusy(value) {
      busy = value;
      send.disabled = value;
      render();
    }

    form.addEventListener("submit", safe(function (event) {
      event.preventDefault();
      if (busy) return;
      var t = texts();
      var data = {
        name: nameField.input.value,
        email: emailField.input.value,
        message: messageField.input.value,
        // Path only: query strings can carry visitors' private tokens.
        page_url: (location.origin + location.pathname).slice(0, 500)
      };
      if (group) data.group = group;
      say("");
      setBusy(true);
      fetch(base + "/messages", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(data)
      })
        .then(function (response) {
          if (response.status === 201) {
            form.reset();
            markInvalid(null);
            say(t.sent, "ok");
          } else if (response.status === 400) {
            return response.json().then(function (answer) {
              markInvalid(answer && answer.fields);
              say(t.invalid, "err");
            });
          } else if (response.status === 413) {
            markInvalid({ message: true });
            say(t.tooLong, "err");
          } else if (response.status === 429) {
            say(t.tooMany, "err");
          } else {
            say(t.failed, "err");
          }
        })
        .catch(function () {
          say(t.failed, "err");
        })
        .then(safe(function () {
          setBusy(false);
        }));
    }));

    // --- live status ---------------------------------------------------------
    function stop() {
      gone = true;
      clearTimeout(wsTimer);
      clearTimeout(pollTimer);
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
        if (!document.hidden) poll();
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
      socket.onmessage = safe(function (event) {
        var message = JSON.parse(event.data);
        if (message && message.type === "status") {
          failures = 0;
          stopPolling();
          apply(message);
        }
      });
      socket.onclose = safe(function (event) {
        if (ws === socket) ws = null;
        closed(event);
      });
    }

    function closed(event) {
      if (gone) return;
      if (event.code === 4404) return stop(); // unknown key or group: nothing to show
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
      if (event.code === 4429) delay = 60000 * (0.5 + Math.random());
      wsTimer = setTimeout(safe(connect), delay);
      if (failures >= 3) startPolling();
      else if (version < 0) poll();
    }

    window.addEventListener("online", safe(function () {
      if (!ws && !gone) connect();
    }));
    document.addEventListener("visibilitychange", safe(function () {
      if (polling && !document.hidden) poll();
    }));

    function mount() {
      (document.body || document.documentElement).appendChild(host);
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
