/* chatstatus inbox.
 *
 * On every dashboard page: the count of conversations waiting for a reply
 * (nav and tab title), a short beep and, when the operator opted in, a
 * desktop notification for a visitor's message.
 * On /inbox/: the live list of conversations, the open conversation and the
 * reply box.
 *
 * Frames come from app.js's one socket ("chatstatus:frame" events); typing
 * frames go out through it (window.chatstatus.send). Reads and writes use the
 * dashboard's small JSON endpoints with the session and the CSRF token.
 * Whatever visitors and operators wrote is only ever inserted as text (links
 * are built as elements, http and https only). */
(function () {
  "use strict";

  var configNode = document.getElementById("dashboard-config");
  if (!configNode) {
    return;
  }
  var config = JSON.parse(configNode.textContent);
  var texts = config.texts;
  var root = document.documentElement;

  // app.js (loaded first) holds the page's socket and the shared helpers.
  var format = window.chatstatus.format;
  var each = window.chatstatus.each;

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (error) {
      return null; // storage disabled: everything works, nothing is remembered
    }
  }

  function storageSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (error) {
      // storage disabled or full: the same
    }
  }

  // GET JSON with the session: the answer, or {error: STATUS} for any but 200.
  // Signed out (401) is not acted on here: the socket, closed by the server
  // with its logout code, sends the page to the log-in page (app.js).
  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (response) {
        if (response.status !== 200) {
          return { error: response.status };
        }
        return response.json();
      }
    );
  }

  function visitorName(conversation) {
    var visitor = conversation.visitor;
    return visitor.name || visitor.email || format(texts.visitor, { id: visitor.id });
  }

  /* --- the count of conversations waiting for a reply ------------------------------- */

  var baseTitle = document.title;

  function showCount(count) {
    each("[data-inbox-count]", function (node) {
      node.textContent = String(count);
      (node.closest(".nav-count") || node).hidden = count === 0;
    });
    document.title = count > 0 ? "(" + count + ") " + baseTitle : baseTitle;
  }

  // Level-triggered: the server counts (rule 6 decides what counts for me);
  // frames only say when to ask, and a burst of them asks once.
  var countTimer = null;
  var countFetching = false;
  var countAgain = false;

  function refreshCount() {
    clearTimeout(countTimer);
    countTimer = setTimeout(fetchCount, 150);
  }

  function fetchCount() {
    if (countFetching) {
      countAgain = true;
      return;
    }
    countFetching = true;
    getJson(config.inbox_count_url)
      .then(function (data) {
        if (data && typeof data.waiting === "number") {
          showCount(data.waiting);
        }
      })
      .catch(function () {})
      .then(function () {
        countFetching = false;
        if (countAgain) {
          countAgain = false;
          fetchCount();
        }
      });
  }

  showCount(config.inbox_waiting);

  /* --- sound and desktop notifications ------------------------------------------------ */

  var SOUND_KEY = "chatstatus.inbox.sound";
  var ALERTED_KEY = "chatstatus.inbox.alerted";
  var AudioContextClass = window.AudioContext || window.webkitAudioContext;
  var audio = null;
  var soundOn = storageGet(SOUND_KEY) !== "off";
  var names = {}; // conversation id -> visitor's name, from conversation frames

  // Browsers let a page make sound only after the person did something on it.
  function unlockAudio() {
    if (!AudioContextClass) {
      return;
    }
    if (!audio) {
      audio = new AudioContextClass();
    }
    if (audio.state === "suspended") {
      audio.resume();
    }
  }
  document.addEventListener("pointerdown", unlockAudio);
  document.addEventListener("keydown", unlockAudio);

  function beep() {
    if (!soundOn || !audio || audio.state !== "running") {
      return;
    }
    // Two short rising tones, a quarter of a second in all.
    var start = audio.currentTime;
    var oscillator = audio.createOscillator();
    var gain = audio.createGain();
    oscillator.type = "sine";
    oscillator.frequency.setValueAtTime(880, start);
    oscillator.frequency.setValueAtTime(1320, start + 0.1);
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.18, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.25);
    oscillator.connect(gain);
    gain.connect(audio.destination);
    oscillator.start(start);
    oscillator.stop(start + 0.26);
  }

  function notificationPermission() {
    return "Notification" in window ? Notification.permission : "unsupported";
  }

  function notify(title, body, conversationId) {
    if (notificationPermission() !== "granted") {
      return;
    }
    try {
      // One notification per conversation: a newer message replaces the older one.
      var notification = new Notification(title, {
        body: body,
        tag: "conversation-" + conversationId,
        lang: root.lang,
      });
      notification.addEventListener("click", function () {
        window.focus();
        notification.close();
        if (inbox) {
          inbox.openConversation(conversationId, { push: true });
        } else {
          location.assign(config.inbox_url + conversationId + "/");
        }
      });
    } catch (error) {
      // Chrome on Android wants a service worker for notifications; the beep still sounds.
    }
  }

  // Every open tab hears the same frame; the first one to claim it alerts.
  // The claim is a Web Lock of that message, taken only if free and then held
  // for CLAIM_HOLD_MS: the browser grants it to one tab, and a tab hearing the
  // frame meanwhile finds it taken. (A check and write of localStorage under
  // one shared lock was not enough: another tab's renderer may see the write
  // only later, and both tabs alerted.) The recently alerted keys in
  // localStorage still keep a tab opened later from alerting a replayed frame.
  var CLAIM_HOLD_MS = 30000;

  function claimed(key) {
    var recent;
    try {
      recent = JSON.parse(storageGet(ALERTED_KEY) || "[]");
    } catch (error) {
      recent = [];
    }
    if (!Array.isArray(recent)) {
      recent = [];
    }
    if (recent.indexOf(key) !== -1) {
      return false;
    }
    recent.push(key);
    storageSet(ALERTED_KEY, JSON.stringify(recent.slice(-50)));
    return true;
  }

  function firstToClaim(key, then) {
    if (navigator.locks && navigator.locks.request) {
      navigator.locks.request(ALERTED_KEY + ":" + key, { ifAvailable: true }, function (lock) {
        if (!lock || !claimed(key)) {
          return null; // another tab has it, or it was alerted already
        }
        then();
        return new Promise(function (resolve) {
          setTimeout(resolve, CLAIM_HOLD_MS);
        });
      });
    } else if (claimed(key)) {
      // Without Web Locks two tabs racing may both alert.
      then();
    }
  }

  function alertFor(message) {
    var looking = !document.hidden && inbox && inbox.openId() === message.conversation_id;
    if (looking) {
      return;
    }
    firstToClaim("message-" + message.id, function () {
      alertNow(message);
    });
  }

  function alertNow(message) {
    beep();
    var name = names[message.conversation_id] || texts.someone;
    var title = format(message.seq === 1 ? texts.new_conversation : texts.new_message, { name: name });
    notify(title, message.body.slice(0, 160), message.conversation_id);
  }

  /* --- the inbox page ------------------------------------------------------------------ */

  var inbox = null;

  function Inbox(node, cfg) {
    var t = cfg.texts;
    var me = config.me;
    var list = document.getElementById("conversation-list");
    var listEmpty = document.getElementById("list-empty");
    var more = document.getElementById("list-more");
    var pane = document.getElementById("pane");
    var paneEmpty = document.getElementById("pane-empty");
    var paneTitle = document.getElementById("pane-title");
    var paneStatus = document.getElementById("pane-status");
    var paneError = document.getElementById("pane-error");
    var paneClosed = document.getElementById("pane-closed");
    var thread = document.getElementById("thread");
    var typingNote = document.getElementById("typing");
    var form = document.getElementById("reply-form");
    var textarea = document.getElementById("reply-body");
    var assign = document.getElementById("assign-select");
    var closeButton = document.getElementById("close-button");
    var csrf = form.querySelector('[name="csrfmiddlewaretoken"]').value;
    var narrow = window.matchMedia("(max-width: 760px)");

    var view = cfg.view;
    var next = cfg.next;
    var conversations = new Map(); // id -> conversation payload + preview
    var rows = new Map(); // id -> <li> in the list
    var open = null; // {id, messages: Map id -> message, lastSeq, loaded}
    var drafts = new Map();
    var loading = new Map(); // conversation id -> promise: the open one's load, one at a time
    var fetching = new Map(); // conversation id -> promise: a row's load, for a message of an unknown one
    var typingAt = 0;
    var typingTimer = null;

    function url(template, id) {
      return template.replace(/\/0(?=[/.]|$)/, "/" + id);
    }

    function post(template, id, fields) {
      return fetch(url(template, id), {
        method: "POST",
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/x-www-form-urlencoded",
          "X-CSRFToken": csrf,
        },
        body: new URLSearchParams(fields).toString(),
      });
    }

    /* times, in the account's zone like every other dashboard page */

    var zoneFormat = new Intl.DateTimeFormat("en-GB", {
      timeZone: cfg.tz,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });

    function zoned(date) {
      var out = {};
      zoneFormat.formatToParts(date).forEach(function (part) {
        out[part.type] = part.value;
      });
      return out;
    }

    function timeText(iso, withTime) {
      var then = zoned(new Date(iso));
      var now = zoned(new Date());
      var clock = then.hour + ":" + then.minute;
      var date = then.year + "-" + then.month + "-" + then.day;
      if (date === now.year + "-" + now.month + "-" + now.day) {
        return clock;
      }
      return withTime ? date + " " + clock : date;
    }

    /* links in text: http(s) only, as elements, never as HTML */

    var URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;

    function linkified(target, text) {
      target.textContent = "";
      var last = 0;
      var match;
      URL_PATTERN.lastIndex = 0;
      while ((match = URL_PATTERN.exec(text)) !== null) {
        // Punctuation after a link belongs to the sentence.
        var href = match[0].replace(/[.,;:!?'")\]}»]+$/, "");
        if (!/^https?:\/\/[^/?#]/i.test(href)) {
          continue; // nothing left but the scheme
        }
        if (match.index > last) {
          target.appendChild(document.createTextNode(text.slice(last, match.index)));
        }
        var link = document.createElement("a");
        link.href = href;
        link.textContent = href;
        link.target = "_blank";
        link.rel = "noopener noreferrer nofollow";
        target.appendChild(link);
        last = match.index + href.length;
        URL_PATTERN.lastIndex = last;
      }
      if (last < text.length) {
        target.appendChild(document.createTextNode(text.slice(last)));
      }
    }

    /* the list */

    function matches(conversation) {
      if (view === "closed") {
        return conversation.status === "closed";
      }
      if (conversation.status !== "open") {
        return false;
      }
      if (view === "waiting") {
        return !!conversation.waiting_since;
      }
      if (view === "mine") {
        return !!conversation.assignee && conversation.assignee.id === me;
      }
      return true;
    }

    // Newest activity first, then the higher id (the server's order).
    function sortsBefore(a, b) {
      if (a.last_message_at !== b.last_message_at) {
        return a.last_message_at > b.last_message_at;
      }
      return a.id > b.id;
    }

    function fillRow(row, c) {
      row.setAttribute("data-conversation", c.id);
      row.setAttribute("data-last", c.last_message_at);
      row.setAttribute("data-waiting", c.waiting_since ? "true" : "false");
      var link = row.querySelector(".conversation-link");
      link.href = url(cfg.urls.page, c.id);
      if (open && open.id === c.id) {
        link.setAttribute("aria-current", "true");
      } else {
        link.removeAttribute("aria-current");
      }
      var name = visitorName(c);
      row.querySelector(".visitor-avatar").textContent = name.charAt(0).toUpperCase();
      row.querySelector(".conversation-name").textContent = name;
      var time = row.querySelector(".conversation-time");
      time.setAttribute("datetime", c.last_message_at);
      time.textContent = timeText(c.last_message_at, false);
      var preview = c.preview;
      var prefix = "";
      if (preview && preview.author === "operator") {
        prefix = t.reply_prefix + " ";
      } else if (preview && (preview.author === "system" || preview.author === "bot")) {
        prefix = t.automatic_prefix + " ";
      }
      row.querySelector(".preview-prefix").textContent = prefix;
      row.querySelector(".preview-body").textContent = preview ? preview.body : "";
      row.querySelector(".badge-waiting").hidden = !c.waiting_since;
      var group = row.querySelector(".conversation-group");
      group.textContent = c.group ? cfg.groups[c.group] || c.group : "";
      group.hidden = !c.group;
      var assignee = row.querySelector(".conversation-assignee");
      if (!c.assignee) {
        assignee.textContent = t.unassigned;
      } else {
        assignee.textContent = c.assignee.id === me ? t.you : c.assignee.display_name;
      }
    }

    function newRow() {
      var template = document.getElementById("conversation-row-template");
      return template.content.firstElementChild.cloneNode(true);
    }

    function place(row, c) {
      var before = null;
      for (var child = list.firstElementChild; child; child = child.nextElementSibling) {
        var other = conversations.get(+child.getAttribute("data-conversation"));
        if (child !== row && other && sortsBefore(c, other)) {
          before = child;
          break;
        }
      }
      if (before !== row.nextElementSibling || row.parentNode !== list) {
        list.insertBefore(row, before);
      }
    }

    function lastShown() {
      var last = list.lastElementChild;
      return last ? conversations.get(+last.getAttribute("data-conversation")) : null;
    }

    function showRow(c) {
      var row = rows.get(c.id);
      if (!matches(c)) {
        if (row) {
          row.remove();
          rows.delete(c.id);
        }
        updateEmpty();
        return;
      }
      if (!row) {
        var last = lastShown();
        if (next && last && sortsBefore(last, c)) {
          return; // older than the page shown: "Show older" brings it
        }
        row = newRow();
        rows.set(c.id, row);
      }
      fillRow(row, c);
      place(row, c);
      updateEmpty();
    }

    function updateEmpty() {
      list.hidden = rows.size === 0;
      listEmpty.hidden = rows.size > 0;
      listEmpty.textContent = view === "closed" ? t.empty_closed : t.empty;
      more.hidden = !next;
      more.href = next ? cfg.urls.inbox + "?view=" + view + "&before=" + next : "";
    }

    // A conversation's new facts (a frame, an answer); the preview is kept.
    function remember(c) {
      var known = conversations.get(c.id);
      var merged = Object.assign({}, known || {}, c);
      if (!("preview" in c) && known) {
        merged.preview = known.preview;
      }
      if (known && known.last_message_at > merged.last_message_at) {
        merged.last_message_at = known.last_message_at;
      }
      conversations.set(c.id, merged);
      names[c.id] = visitorName(merged);
      return merged;
    }

    // mode "replace": another list; "append": its next page; "refresh": the
    // first page again (after a reconnect), keeping the rows that stay.
    function showList(data, mode) {
      if (mode === "replace") {
        rows.forEach(function (row) {
          row.remove();
        });
        rows.clear();
      }
      var fresh = new Set();
      var kept = next;
      next = null; // every row of the answer belongs in the list
      data.conversations.forEach(function (c) {
        fresh.add(c.id);
        showRow(remember(c));
      });
      var end = data.conversations[data.conversations.length - 1];
      var beyond = false;
      if (mode === "refresh") {
        // Rows within the page the server sent and not in it are gone; older
        // ones, from pages shown with "Show older", stay.
        rows.forEach(function (row, id) {
          var c = conversations.get(id);
          if (fresh.has(id)) {
            return;
          }
          if (!data.next || !end || sortsBefore(c, end)) {
            row.remove();
            rows.delete(id);
          } else {
            beyond = true;
          }
        });
      }
      next = mode === "refresh" && beyond ? kept : data.next;
      updateEmpty();
    }

    // A list's answer that arrives after another list was chosen is dropped.
    var listGeneration = 0;

    function loadList(mode) {
      if (mode === "replace") {
        listGeneration += 1;
      }
      var generation = listGeneration;
      var query = "?view=" + encodeURIComponent(view) + (mode === "append" && next ? "&before=" + next : "");
      return getJson(cfg.urls.list + query).then(function (data) {
        if (data && data.conversations && generation === listGeneration) {
          showList(data, mode);
        }
      });
    }

    function chooseView(key, push) {
      view = key;
      each(".inbox-views a", function (link) {
        if (link.getAttribute("data-view") === key) {
          link.setAttribute("aria-current", "page");
        } else {
          link.removeAttribute("aria-current");
        }
      });
      next = null;
      if (push) {
        history.replaceState(history.state, "", cfg.urls.inbox + (open ? open.id + "/" : "") + "?view=" + key);
      }
      return loadList("replace").catch(function () {});
    }

    /* the open conversation */

    function openId() {
      return open ? open.id : null;
    }

    function authorLabel(message) {
      if (message.author === "visitor") {
        var c = conversations.get(message.conversation_id);
        return c ? visitorName(c) : t.visitor_plain;
      }
      if (message.author === "operator") {
        if (!message.operator) {
          return t.operator;
        }
        return message.operator.id === me ? t.you : message.operator.display_name;
      }
      return message.author === "bot" ? t.bot : t.automatic;
    }

    function newMessageNode() {
      return document.getElementById("message-template").content.firstElementChild.cloneNode(true);
    }

    function fillMessage(item, message) {
      item.setAttribute("data-author", message.author);
      item.setAttribute("data-kind", message.kind);
      item.setAttribute("data-id", message.id);
      item.setAttribute("data-seq", message.seq);
      item.setAttribute("data-client-id", message.client_id);
      item.setAttribute("data-mine", message.operator && message.operator.id === me ? "true" : "false");
      item.removeAttribute("data-pending");
      item.querySelector(".message-author").textContent = authorLabel(message);
      var time = item.querySelector(".message-time");
      time.setAttribute("datetime", message.created_at);
      time.textContent = timeText(message.created_at, true);
      linkified(item.querySelector(".message-text"), message.body);
      // A bot answer shows what the visitor said of it, and changes when they say it.
      var feedback = item.querySelector(".message-feedback");
      var said = message.faq && message.faq.feedback;
      feedback.textContent = said ? t.feedback[said] || "" : "";
      feedback.hidden = !feedback.textContent;
      var state = item.querySelector(".message-state");
      state.hidden = true;
      state.textContent = "";
    }

    function nearBottom() {
      return thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
    }

    function toBottom() {
      thread.scrollTop = thread.scrollHeight;
    }

    function addMessage(message) {
      if (!open || open.id !== message.conversation_id) {
        return;
      }
      if (open.messages.has(message.id)) {
        var stray = thread.querySelector(
          '[data-pending="true"][data-client-id="' + cssEscape(message.client_id) + '"]'
        );
        if (stray) {
          stray.remove();
        }
        // A message already shown may come again changed (the visitor's feedback on a bot answer).
        open.messages.set(message.id, message);
        var shown = thread.querySelector(
          '[data-id="' + cssEscape(String(message.id)) + '"]:not([data-pending="true"])'
        );
        if (shown) {
          fillMessage(shown, message);
        }
        return;
      }
      var stick = nearBottom() || (message.operator && message.operator.id === me);
      if (open.loaded && message.seq > open.lastSeq + 1) {
        // A frame was missed (the socket reconnected): fetch what lies between.
        load(open.id);
      }
      open.messages.set(message.id, message);
      open.lastSeq = Math.max(open.lastSeq, message.seq);
      var item = thread.querySelector('[data-pending="true"][data-client-id="' + cssEscape(message.client_id) + '"]');
      if (!item) {
        item = newMessageNode();
      }
      fillMessage(item, message);
      // Confirmed messages in seq order, the ones still sending after them.
      var before = null;
      for (var child = thread.firstElementChild; child; child = child.nextElementSibling) {
        if (child === item) {
          continue;
        }
        if (child.getAttribute("data-pending") === "true" || +child.getAttribute("data-seq") > message.seq) {
          before = child;
          break;
        }
      }
      thread.insertBefore(item, before);
      if (stick) {
        toBottom();
      }
    }

    function cssEscape(value) {
      return window.CSS && CSS.escape ? CSS.escape(value) : value.replace(/["\\]/g, "\\$&");
    }

    function showError(text) {
      paneError.textContent = text || "";
      paneError.hidden = !text;
    }

    function showHead(c) {
      paneTitle.textContent = visitorName(c);
      paneStatus.textContent = t.status[c.status] || c.status;
      paneStatus.setAttribute("data-conversation-status", c.status);
      var value = c.assignee ? String(c.assignee.id) : "";
      if (c.assignee && !assign.querySelector('option[value="' + value + '"]')) {
        // A colleague no longer active: shown, not offered to others.
        var option = document.createElement("option");
        option.value = value;
        option.textContent = c.assignee.display_name;
        assign.appendChild(option);
      }
      assign.value = value;
      var closed = c.status === "closed";
      closeButton.hidden = closed;
      form.hidden = closed;
      paneClosed.hidden = !closed;
      detail("name", c.visitor.name);
      detail("email", c.visitor.email, c.visitor.email ? "mailto:" + c.visitor.email : null);
    }

    function detail(key, value, href) {
      var target = pane.querySelector('[data-detail="' + key + '"]');
      target.textContent = "";
      target.classList.toggle("muted", !value);
      if (!value) {
        target.textContent = key === "group" ? t.no_group : t.not_given;
        return;
      }
      if (href) {
        var link = document.createElement("a");
        link.href = href;
        link.textContent = value;
        if (!href.startsWith("mailto:")) {
          link.target = "_blank";
          link.rel = "noopener noreferrer nofollow";
        }
        target.appendChild(link);
      } else {
        target.textContent = value;
      }
    }

    function showDetails(visitor) {
      detail("name", visitor.name);
      detail("email", visitor.email, visitor.email ? "mailto:" + visitor.email : null);
      detail("page", visitor.page_url, /^https?:\/\//i.test(visitor.page_url) ? visitor.page_url : null);
      detail("group", visitor.group_name);
      detail("language", visitor.language_name);
      detail("since", visitor.since ? timeText(visitor.since, true) : "");
      localZone = visitor.time_zone || "";
      showLocalTime();
    }

    /* the visitor's local time, from the zone their browser reported; the
       operator's browser keeps the clock, so no request is needed to move it */

    var localZone = "";
    var localTimer = null;

    function showLocalTime() {
      clearTimeout(localTimer);
      var cell = pane.querySelector('[data-detail="local-time"]');
      var clock = "";
      if (localZone) {
        try {
          clock = new Intl.DateTimeFormat("en-GB", {
            timeZone: localZone,
            hour: "2-digit",
            minute: "2-digit",
            hourCycle: "h23",
          }).format(new Date());
        } catch (error) {
          clock = ""; // a zone this browser does not know: shown as unknown rather than wrong
        }
      }
      cell.parentNode.hidden = !clock;
      if (!clock) {
        return;
      }
      cell.textContent = clock + " (" + localZone + ")";
      // Again when the minute turns (every zone's offset is whole minutes).
      localTimer = setTimeout(showLocalTime, 60000 - (Date.now() % 60000) + 20);
    }

    function load(id) {
      if (loading.has(id)) {
        return loading.get(id);
      }
      var after = open && open.id === id ? open.lastSeq : 0;
      var request = getJson(url(cfg.urls.conversation, id) + "?after=" + after)
        .then(function (data) {
          if (!open || open.id !== id || !data) {
            return;
          }
          if (data.error === 404) {
            // Reassigned away, or rule 6 hides it now.
            showError(t.gone_error_pane);
            dropRow(id);
            return;
          }
          if (data.error) {
            throw new Error("status " + data.error);
          }
          showError("");
          var c = remember(data.conversation);
          showHead(c);
          showDetails(data.visitor);
          data.messages.forEach(addMessage);
          showSuggestion(data.suggestion);
          if (!open.loaded) {
            open.loaded = true;
            pendingFor(id).forEach(showPending);
            toBottom();
          }
        })
        .catch(function () {
          if (open && open.id === id) {
            showError(t.load_failed);
            setTimeout(function () {
              if (open && open.id === id) {
                load(id);
              }
            }, 3000);
          }
        })
        .then(function () {
          loading.delete(id);
        });
      loading.set(id, request);
      return request;
    }

    function dropRow(id) {
      var row = rows.get(id);
      if (row) {
        row.remove();
        rows.delete(id);
        updateEmpty();
      }
    }

    function markOpenRow() {
      rows.forEach(function (row, id) {
        var link = row.querySelector(".conversation-link");
        if (open && open.id === id) {
          link.setAttribute("aria-current", "true");
        } else {
          link.removeAttribute("aria-current");
        }
      });
    }

    function openConversation(id, options) {
      if (open && open.id === id) {
        return;
      }
      if (open) {
        drafts.set(open.id, textarea.value);
      }
      open = { id: id, messages: new Map(), lastSeq: 0, loaded: false };
      showSuggestion(null);
      thread.textContent = "";
      typingNote.hidden = true;
      showError("");
      var known = conversations.get(id);
      if (known) {
        showHead(known);
      } else {
        paneTitle.textContent = "…";
      }
      textarea.value = drafts.get(id) || "";
      paneEmpty.hidden = true;
      pane.hidden = false;
      node.setAttribute("data-pane", "open");
      markOpenRow();
      if (options.push) {
        history.pushState({ conversation: id, pushed: true }, "", url(cfg.urls.page, id) + "?view=" + view);
      }
      if (narrow.matches) {
        // No keyboard popping up on a phone: focus goes to the conversation's name.
        paneTitle.focus({ preventScroll: true });
      } else if (options.push) {
        textarea.focus();
      }
      load(id);
    }

    /* the FAQ entry that answers the visitor's last message: one click puts it in the reply box */

    var suggestion = document.getElementById("suggestion");
    var suggested = null;

    function showSuggestion(data) {
      suggested = data && data.answer ? data : null;
      suggestion.hidden = !suggested;
      document.getElementById("suggestion-question").textContent = suggested ? suggested.question : "";
      suggestion.title = suggested ? suggested.answer : "";
    }

    document.getElementById("suggestion-insert").addEventListener("click", function () {
      if (!suggested) {
        return;
      }
      textarea.value = textarea.value ? textarea.value.replace(/\s*$/, "\n") + suggested.answer : suggested.answer;
      showSuggestion(null);
      textarea.focus();
    });

    function closePane(push) {
      if (open) {
        drafts.set(open.id, textarea.value);
      }
      open = null;
      pane.hidden = true;
      paneEmpty.hidden = false;
      node.setAttribute("data-pane", "list");
      markOpenRow();
      if (push) {
        history.pushState({}, "", cfg.urls.inbox + "?view=" + view);
      }
    }

    /* replies: a client_id each, kept until the server has them */

    var PENDING_KEY = "chatstatus.inbox.pending." + me;
    var pending = new Map(); // client_id -> {conversation_id, client_id, body, state, error, attempts, timer}

    function savePending() {
      var items = [];
      pending.forEach(function (item) {
        if (item.state !== "failed") {
          items.push({ conversation_id: item.conversation_id, client_id: item.client_id, body: item.body });
        }
      });
      storageSet(PENDING_KEY, JSON.stringify(items));
    }

    function pendingFor(id) {
      var items = [];
      pending.forEach(function (item) {
        if (item.conversation_id === id) {
          items.push(item);
        }
      });
      return items;
    }

    function newClientId() {
      // Not crypto.randomUUID: it exists in secure contexts only.
      var bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      return (
        "op-" +
        Array.prototype.map
          .call(bytes, function (byte) {
            return (byte + 256).toString(16).slice(1);
          })
          .join("")
      );
    }

    function pendingNode(item) {
      return thread.querySelector('[data-pending="true"][data-client-id="' + cssEscape(item.client_id) + '"]');
    }

    function showPending(item) {
      if (!open || open.id !== item.conversation_id || pending.get(item.client_id) !== item) {
        return; // another conversation, or already confirmed
      }
      var node = pendingNode(item);
      if (!node) {
        node = newMessageNode();
        node.setAttribute("data-pending", "true");
        node.setAttribute("data-author", "operator");
        node.setAttribute("data-kind", "text");
        node.setAttribute("data-mine", "true");
        node.setAttribute("data-client-id", item.client_id);
        node.querySelector(".message-author").textContent = t.you;
        linkified(node.querySelector(".message-text"), item.body);
        thread.appendChild(node);
        toBottom();
      }
      node.setAttribute("data-state", item.state);
      var state = node.querySelector(".message-state");
      state.hidden = false;
      state.textContent = "";
      if (item.state === "failed") {
        state.appendChild(document.createTextNode(format(t.failed, { error: item.error }) + " "));
        var again = document.createElement("button");
        again.type = "button";
        again.className = "link-button";
        again.textContent = t.try_again;
        again.addEventListener("click", function () {
          item.attempts = 0;
          send(item);
        });
        state.appendChild(again);
      } else {
        state.textContent = item.state === "retrying" ? t.retrying : t.sending;
      }
    }

    // The server has it: from the reply's answer or, as often first, from the socket.
    function confirmed(message) {
      var item = pending.get(message.client_id);
      if (item && message.author === "operator") {
        clearTimeout(item.timer);
        pending.delete(message.client_id);
        savePending();
      }
    }

    function send(item) {
      clearTimeout(item.timer);
      if (pending.get(item.client_id) !== item) {
        return;
      }
      item.state = item.attempts ? "retrying" : "sending";
      showPending(item);
      post(cfg.urls.reply, item.conversation_id, { body: item.body, client_id: item.client_id })
        .then(function (response) {
          if (response.status === 200 || response.status === 201) {
            return response.json().then(onMessage);
          }
          if (response.status === 401) {
            // Signed out: the reply stays in this browser's storage and is sent after logging in again.
            location.assign(config.login_url);
            return null;
          }
          if (response.status >= 500 || response.status === 429) {
            throw new Error("status " + response.status);
          }
          // Refused for good (400, 403, 404, 409): sending it again as it is won't help.
          var reasons = { 404: t.gone_error, 409: t.closed_error };
          fail(item, reasons[response.status] || t.invalid_error);
          return null;
        })
        .catch(function () {
          // No answer: the reply may or may not be stored. The same client_id makes
          // the retry safe either way (the server answers 200 with the stored one).
          if (pending.get(item.client_id) !== item) {
            return; // the socket brought it meanwhile
          }
          item.attempts += 1;
          item.state = "retrying";
          showPending(item);
          var ceiling = Math.min(30000, 1000 * Math.pow(2, item.attempts));
          item.timer = setTimeout(function () {
            send(item);
          }, ceiling / 2 + Math.random() * (ceiling / 2));
        });
    }

    function fail(item, reason) {
      item.state = "failed";
      item.error = reason;
      savePending();
      showPending(item);
    }

    function submit() {
      var body = textarea.value.replace(/\r\n?/g, "\n").trim();
      if (!body || !open) {
        return;
      }
      var item = {
        conversation_id: open.id,
        client_id: newClientId(),
        body: body.slice(0, cfg.body_max),
        state: "sending",
        attempts: 0,
      };
      pending.set(item.client_id, item);
      savePending();
      textarea.value = "";
      drafts.delete(open.id);
      showPending(item);
      send(item);
    }

    function resendAll() {
      pending.forEach(function (item) {
        if (item.state !== "failed") {
          send(item);
        }
      });
    }

    /* frames from the socket */

    function onConversation(c) {
      var merged = remember(c);
      showRow(merged);
      if (open && open.id === c.id) {
        showHead(merged);
      }
    }

    function onMessage(message) {
      confirmed(message);
      if (open && open.id === message.conversation_id && open.loaded) {
        if (message.author === "visitor") {
          load(open.id); // its answer carries the suggestion for this new question
        } else if (message.author === "operator") {
          showSuggestion(null);
        }
      }
      var c = conversations.get(message.conversation_id);
      if (c) {
        if (message.created_at >= c.last_message_at) {
          c.last_message_at = message.created_at;
          // As the server's list: automatic messages are not what a preview shows.
          if (message.author !== "system") {
            c.preview = { author: message.author, body: message.body.slice(0, 160) };
          }
        }
        showRow(c);
      } else if (!fetching.has(message.conversation_id)) {
        // Not in the pages loaded: its conversation frame came before this page did.
        var id = message.conversation_id;
        var request = getJson(url(cfg.urls.conversation, id))
          .then(function (data) {
            if (data && data.conversation) {
              var last = data.messages.filter(function (m) {
                return m.author !== "system";
              }).pop();
              data.conversation.preview = last ? { author: last.author, body: last.body.slice(0, 160) } : null;
              showRow(remember(data.conversation));
            }
          })
          .catch(function () {})
          .then(function () {
            fetching.delete(id);
          });
        fetching.set(id, request);
      }
      addMessage(message);
    }

    function onTyping(frame) {
      if (!open || open.id !== frame.conversation_id || !frame.operator || frame.operator.id === me) {
        return;
      }
      typingNote.textContent = format(t.typing, { name: frame.operator.display_name });
      typingNote.hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () {
        typingNote.hidden = true;
      }, 4000);
    }

    function resync() {
      loadList("refresh").catch(function () {});
      if (open) {
        load(open.id);
      }
      resendAll();
    }

    /* wiring */

    // A phone shows the open conversation in the screen's height below the top
    // bar, whose height depends on how its items wrap: measured, not guessed.
    var sidebar = document.querySelector(".sidebar");
    function measureTopbar() {
      root.style.setProperty("--topbar", sidebar.offsetHeight + "px");
    }
    if (sidebar) {
      measureTopbar();
      if (window.ResizeObserver) {
        new ResizeObserver(measureTopbar).observe(sidebar);
      } else {
        window.addEventListener("resize", measureTopbar);
      }
    }

    var detailsButton = document.getElementById("details-button");
    var paneBox = document.getElementById("conversation-pane");
    detailsButton.addEventListener("click", function () {
      var show = detailsButton.getAttribute("aria-expanded") !== "true";
      detailsButton.setAttribute("aria-expanded", show ? "true" : "false");
      paneBox.setAttribute("data-details", show ? "open" : "closed");
    });

    cfg.rows.forEach(function (c) {
      remember(c);
    });
    each(".conversation-row", function (row) {
      var c = conversations.get(+row.getAttribute("data-conversation"));
      if (c) {
        rows.set(c.id, row);
        fillRow(row, c);
      }
    });
    updateEmpty();

    list.addEventListener("click", function (event) {
      var link = event.target.closest(".conversation-link");
      if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
        return;
      }
      event.preventDefault();
      openConversation(+link.closest(".conversation-row").getAttribute("data-conversation"), { push: true });
    });

    each(".inbox-views a", function (link) {
      link.addEventListener("click", function (event) {
        if (event.metaKey || event.ctrlKey || event.shiftKey) {
          return;
        }
        event.preventDefault();
        chooseView(link.getAttribute("data-view"), true);
      });
    });

    more.addEventListener("click", function (event) {
      event.preventDefault();
      loadList("append").catch(function () {});
    });

    document.getElementById("back-button").addEventListener("click", function () {
      if (history.state && history.state.conversation === openId() && history.state.pushed) {
        history.back();
      } else {
        closePane(true);
      }
    });

    window.addEventListener("popstate", function (event) {
      var state = event.state || {};
      if (state.conversation) {
        openConversation(state.conversation, { push: false });
      } else {
        closePane(false);
      }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      submit();
    });

    textarea.addEventListener("keydown", function (event) {
      // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition is neither.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        submit();
      }
    });

    textarea.addEventListener("input", function () {
      if (!open || !textarea.value.trim()) {
        return;
      }
      var now = Date.now();
      // The server passes on at most one every 2 s too; this spares the socket.
      if (now - typingAt >= 2000 && window.chatstatus && window.chatstatus.send({ type: "typing", conversation_id: open.id })) {
        typingAt = now;
      }
    });

    assign.addEventListener("change", function () {
      if (!open) {
        return;
      }
      var id = open.id;
      post(cfg.urls.assign, id, { operator: assign.value })
        .then(function (response) {
          if (response.status !== 200) {
            throw new Error("status " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          showError("");
          onConversation(data.conversation);
        })
        .catch(function () {
          showError(t.action_failed);
          var known = conversations.get(id);
          if (known && open && open.id === id) {
            showHead(known);
          }
        });
    });

    closeButton.addEventListener("click", function () {
      if (!open) {
        return;
      }
      post(cfg.urls.close, open.id, {})
        .then(function (response) {
          if (response.status !== 200) {
            throw new Error("status " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          showError("");
          onConversation(data.conversation);
        })
        .catch(function () {
          showError(t.action_failed);
        });
    });

    /* the notification and sound buttons */

    var notifyButton = document.getElementById("notify-button");
    var notifyState = document.getElementById("notify-state");
    var soundToggle = document.getElementById("sound-toggle");

    function showNotifyState() {
      var permission = notificationPermission();
      notifyButton.hidden = permission !== "default";
      notifyState.hidden = permission !== "granted" && permission !== "denied";
      notifyState.textContent = permission === "granted" ? t.notify_on : t.notify_blocked;
    }

    if (notifyButton) {
      showNotifyState();
      // Asked only when the operator clicks: never on page load.
      notifyButton.addEventListener("click", function () {
        var answer = Notification.requestPermission(showNotifyState);
        if (answer && answer.then) {
          answer.then(showNotifyState);
        }
      });
    }

    if (AudioContextClass) {
      document.getElementById("sound-label").hidden = false;
      soundToggle.checked = soundOn;
      soundToggle.addEventListener("change", function () {
        soundOn = soundToggle.checked;
        storageSet(SOUND_KEY, soundOn ? "on" : "off");
        unlockAudio();
        beep(); // what it will sound like
      });
    }

    // Replies a closed tab or a crash left unconfirmed: sent again, same client_id.
    try {
      JSON.parse(storageGet(PENDING_KEY) || "[]").forEach(function (item) {
        if (item && item.client_id && item.body && typeof item.conversation_id === "number") {
          pending.set(item.client_id, {
            conversation_id: item.conversation_id,
            client_id: item.client_id,
            body: item.body,
            state: "sending",
            attempts: 0,
          });
        }
      });
    } catch (error) {
      // unreadable: nothing to resend
    }
    resendAll();

    if (cfg.open) {
      history.replaceState({ conversation: cfg.open }, "", location.href);
      openConversation(cfg.open, { push: false });
    }

    return {
      openId: openId,
      openConversation: openConversation,
      conversation: onConversation,
      message: onMessage,
      typing: onTyping,
      resync: resync,
    };
  }

  var inboxNode = document.getElementById("inbox");
  if (inboxNode) {
    inbox = Inbox(inboxNode, JSON.parse(document.getElementById("inbox-config").textContent));
  }

  /* --- frames ------------------------------------------------------------------------------ */

  function conversationChanged(conversation) {
    names[conversation.id] = visitorName(conversation);
    refreshCount();
    if (inbox) {
      inbox.conversation(conversation);
    }
  }

  function caughtUp() {
    refreshCount();
    if (inbox) {
      inbox.resync();
    }
  }

  document.addEventListener("chatstatus:frame", function (event) {
    var frame = event.detail;
    if (frame.type === "hello") {
      // After every (re)connect: whatever was missed meanwhile is read again.
      caughtUp();
    } else if (frame.type === "conversation") {
      conversationChanged(frame.conversation);
    } else if (frame.type === "message") {
      // A message that began or ended its conversation's wait carries the conversation.
      if (frame.conversation) {
        conversationChanged(frame.conversation);
      }
      if (inbox) {
        inbox.message(frame.message);
      }
      if (frame.message.author === "visitor") {
        alertFor(frame.message);
      }
    } else if (frame.type === "typing" && inbox) {
      inbox.typing(frame);
    }
  });
  // app.js runs first and opens the socket; while this script was still
  // loading, its hello may have come and gone (the browser handles socket
  // events between deferred scripts): what changed since the page was
  // rendered is read now instead.
  if (root.getAttribute("data-ws") === "ready") {
    caughtUp();
  }
})();
