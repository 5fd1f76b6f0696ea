/* chatstatus dashboard: one operator WebSocket per page, the status menu
 * (WAI-ARIA menu button), and small progressive enhancements of the forms.
 * Every text that comes from operators or groups is inserted with textContent. */
(function () {
  "use strict";

  var configNode = document.getElementById("dashboard-config");
  if (!configNode) {
    return;
  }
  var config = JSON.parse(configNode.textContent);
  var texts = config.texts;
  var root = document.documentElement;

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_match, name) {
      return values[name];
    });
  }

  function each(selector, callback, scope) {
    Array.prototype.forEach.call((scope || document).querySelectorAll(selector), callback);
  }

  /* --- showing state ----------------------------------------------------------- */

  function showOperatorStatus(operatorId, status) {
    var label = texts.status[status] || status;
    each('[data-status-of="' + operatorId + '"]', function (node) {
      node.setAttribute("data-status", status);
    });
    each('[data-status-label-of="' + operatorId + '"]', function (node) {
      node.textContent = label;
    });
    if (operatorId === config.me) {
      config.status = status;
      menu.showChecked(status);
    }
  }

  function showPresence(operatorId, present) {
    each('[data-presence-of="' + operatorId + '"]', function (node) {
      node.setAttribute("data-present", present ? "true" : "false");
      node.textContent = present ? texts.present : texts.absent;
    });
  }

  // "today 17:00", "tomorrow 09:00", "Monday 09:00" or a date, in the box's zone.
  function momentText(iso, zone) {
    var moment = new Date(iso);
    var parts = function (date) {
      var out = {};
      new Intl.DateTimeFormat("en-GB", {
        timeZone: zone,
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      })
        .formatToParts(date)
        .forEach(function (part) {
          out[part.type] = part.value;
        });
      return out;
    };
    var then = parts(moment);
    var now = parts(new Date());
    var thenDay = Date.UTC(+then.year, +then.month - 1, +then.day);
    var nowDay = Date.UTC(+now.year, +now.month - 1, +now.day);
    var days = Math.round((thenDay - nowDay) / 86400000);
    var day;
    if (days === 0) {
      day = texts.today;
    } else if (days === 1) {
      day = texts.tomorrow;
    } else if (days > 1 && days < 7) {
      day = texts.weekdays[(new Date(thenDay).getUTCDay() + 6) % 7];
    } else {
      day = then.year + "-" + then.month + "-" + then.day;
    }
    return format(texts.when, { day: day, time: then.hour + ":" + then.minute });
  }

  function showBox(node, box) {
    node.setAttribute("data-status", box.status);
    node.querySelector(".box-status").textContent = texts.status[box.status] || box.status;
    node.querySelector(".box-reason").textContent = texts.reasons[box.reason] || box.reason;
    var next = node.querySelector(".box-next");
    if (box.next_change_at) {
      var zone = node.getAttribute("data-tz") || "UTC";
      var when = momentText(box.next_change_at, zone);
      next.textContent = format(box.reason === "closed" ? texts.opens : texts.closes, { when: when });
      next.hidden = false;
    } else {
      next.textContent = "";
      next.hidden = true;
    }
  }

  function showChatBox(snapshot) {
    if (!snapshot) {
      return;
    }
    each("[data-box]", function (node) {
      var key = node.getAttribute("data-box");
      var box = key === "__account__" ? snapshot : (snapshot.groups || {})[key];
      if (box) {
        showBox(node, box);
      }
    });
  }

  // Presence has no push event of its own: resync it from the server when
  // anything happens, and on every heartbeat.
  // A refresh asked for while one is in flight runs again once it is back:
  // that answer may have been computed before the change that asked for it,
  // and applied after the change's push it would show the old status.
  var teamFetch = null;
  var teamAgain = false;
  function refreshTeam() {
    if (!document.querySelector("[data-presence-of]")) {
      return;
    }
    if (teamFetch) {
      teamAgain = true;
      return;
    }
    teamFetch = fetch(config.team_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 200) {
          return response.json();
        }
        return null;
      })
      .then(function (data) {
        if (data) {
          data.operators.forEach(function (operator) {
            showOperatorStatus(operator.id, operator.status);
            showPresence(operator.id, operator.present);
          });
        }
      })
      .catch(function () {})
      .then(function () {
        teamFetch = null;
        if (teamAgain) {
          teamAgain = false;
          refreshTeam();
        }
      });
  }

  /* --- the operator WebSocket ------------------------------------------------------ */

  var CLOSE_LOGGED_OUT = 4000;
  var CLOSE_UNAUTHENTICATED = 4401;
  var banner = document.getElementById("connection-banner");
  var socket = null;
  var attempts = 0;
  var heartbeatTimer = null;
  var reconnectTimer = null;
  var leaving = false;

  function jittered(base, spread) {
    return base * (1 - spread + Math.random() * 2 * spread);
  }

  function scheduleHeartbeat() {
    clearTimeout(heartbeatTimer);
    // ±20 %: thousands of dashboards opened together must not beat together.
    heartbeatTimer = setTimeout(function () {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "heartbeat" }));
        refreshTeam();
      }
      scheduleHeartbeat();
    }, jittered(config.heartbeat_seconds * 1000, 0.2));
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + config.ws_path);
    root.setAttribute("data-ws", "connecting");
    socket.addEventListener("open", function () {
      attempts = 0;
      banner.hidden = true;
      root.setAttribute("data-ws", "open");
      scheduleHeartbeat();
    });
    socket.addEventListener("message", function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (message.type === "hello") {
        // A fresh start after every (re)connect: the server's word wins.
        showOperatorStatus(message.operator.id, message.operator.status);
        showChatBox(message.chat_box);
        refreshTeam();
        root.setAttribute("data-ws", "ready");
      } else if (message.type === "operator_status") {
        showOperatorStatus(message.operator_id, message.status);
        refreshTeam();
      } else if (message.type === "chat_box") {
        showChatBox(message);
      }
      // Every frame, hello included (a fresh start after a reconnect), for
      // inbox.js: conversation, message and typing frames are its own.
      document.dispatchEvent(new CustomEvent("chatstatus:frame", { detail: message }));
    });
    socket.addEventListener("close", function (event) {
      clearTimeout(heartbeatTimer);
      socket = null;
      root.setAttribute("data-ws", "closed");
      if (event.code === CLOSE_LOGGED_OUT || event.code === CLOSE_UNAUTHENTICATED) {
        location.assign(config.login_url);
        return;
      }
      if (leaving) {
        return;
      }
      banner.hidden = false;
      // Exponential backoff with full jitter, capped at 30 s.
      var ceiling = Math.min(30000, 1000 * Math.pow(2, attempts));
      attempts += 1;
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(connect, ceiling / 2 + Math.random() * (ceiling / 2));
    });
  }

  window.addEventListener("pagehide", function () {
    leaving = true;
  });
  window.addEventListener("pageshow", function (event) {
    // Back from the page cache with a dead socket: connect again.
    if (event.persisted && !socket) {
      leaving = false;
      connect();
    }
  });

  function sendStatus(status) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "set_status", status: status }));
      return true;
    }
    return false;
  }

  // inbox.js sends its frames (typing) through this page's one socket, and
  // shares these helpers.
  window.chatstatus = {
    format: format,
    each: each,
    send: function (frame) {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(frame));
        return true;
      }
      return false;
    },
  };

  /* --- the status menu (WAI-ARIA menu button) ------------------------------------- */

  var menu = (function () {
    var button = document.getElementById("status-button");
    var list = document.getElementById("status-menu");
    var items = Array.prototype.slice.call(list.querySelectorAll('[role="menuitemradio"]'));

    items.forEach(function (item) {
      item.setAttribute("tabindex", "-1");
    });

    function isOpen() {
      return button.getAttribute("aria-expanded") === "true";
    }

    function focusItem(index) {
      var count = items.length;
      items[((index % count) + count) % count].focus();
    }

    function open(focusIndex) {
      list.classList.add("open");
      button.setAttribute("aria-expanded", "true");
      focusItem(focusIndex);
    }

    function close(returnFocus) {
      list.classList.remove("open");
      button.setAttribute("aria-expanded", "false");
      if (returnFocus) {
        button.focus();
      }
    }

    function choose(item) {
      var status = item.getAttribute("data-status");
      close(true);
      if (!sendStatus(status)) {
        // No socket: the plain form still works.
        list.requestSubmit(item);
      }
    }

    button.addEventListener("click", function (event) {
      // A click made by the keyboard (detail 0) after keydown already opened the menu.
      if (event.detail === 0 && isOpen()) {
        return;
      }
      if (isOpen()) {
        close(false);
      } else {
        open(0);
      }
    });
    button.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " " || event.key === "ArrowDown") {
        event.preventDefault();
        open(0);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        open(items.length - 1);
      }
    });
    list.addEventListener("keydown", function (event) {
      var index = items.indexOf(document.activeElement);
      if (event.key === "ArrowDown") {
        event.preventDefault();
        focusItem(index + 1);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        focusItem(index - 1);
      } else if (event.key === "Home") {
        event.preventDefault();
        focusItem(0);
      } else if (event.key === "End") {
        event.preventDefault();
        focusItem(items.length - 1);
      } else if (event.key === "Escape") {
        event.preventDefault();
        close(true);
      } else if (event.key === "Tab") {
        close(false);
      } else if ((event.key === "Enter" || event.key === " ") && index >= 0) {
        event.preventDefault();
        choose(items[index]);
      }
    });
    list.addEventListener("click", function (event) {
      var item = event.target.closest('[role="menuitemradio"]');
      if (item) {
        event.preventDefault();
        choose(item);
      }
    });
    document.addEventListener("pointerdown", function (event) {
      if (isOpen() && !list.contains(event.target) && !button.contains(event.target)) {
        close(false);
      }
    });

    return {
      showChecked: function (status) {
        items.forEach(function (item) {
          item.setAttribute("aria-checked", item.getAttribute("data-status") === status ? "true" : "false");
        });
      },
    };
  })();

  /* --- opening hours editor ------------------------------------------------------ */

  function cloneTemplate(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }

  function syncClosedNote(day) {
    var rows = day.querySelector(".day-rows");
    var hasRows = rows.querySelector(".interval-row");
    var note = rows.querySelector(".closed-note");
    if (!hasRows && !note) {
      rows.appendChild(cloneTemplate("closed-note-template"));
    } else if (hasRows && note) {
      note.remove();
    }
  }

  function syncKind(row) {
    var select = row.querySelector('select[name="exception_kind"]');
    row.setAttribute("data-kind", select.value);
  }

  var hoursForm = document.querySelector(".hours-form");
  if (hoursForm) {
    hoursForm.addEventListener("click", function (event) {
      var add = event.target.closest(".add-row");
      var addException = event.target.closest(".add-exception");
      var remove = event.target.closest(".remove-row");
      if (add) {
        event.preventDefault();
        var day = add.closest(".day");
        var row = cloneTemplate("interval-row-template");
        var label = day.getAttribute("data-day-label");
        each("input", function (input) {
          input.name = input.name.replace("__day__", day.getAttribute("data-day"));
          input.setAttribute("aria-label", input.getAttribute("aria-label").replace("__label__", label));
        }, row);
        day.querySelector(".day-rows").appendChild(row);
        syncClosedNote(day);
        row.querySelector("input").focus();
      } else if (addException) {
        event.preventDefault();
        var exception = cloneTemplate("exception-row-template");
        hoursForm.querySelector(".exceptions").appendChild(exception);
        syncKind(exception);
        exception.querySelector("input").focus();
      } else if (remove) {
        event.preventDefault();
        var target = remove.closest(".interval-row, .exception-row");
        var parentDay = remove.closest(".day");
        var focusAfter = (parentDay || hoursForm).querySelector(parentDay ? ".add-row" : ".add-exception");
        target.remove();
        if (parentDay) {
          syncClosedNote(parentDay);
        }
        focusAfter.focus();
      }
    });
    hoursForm.addEventListener("change", function (event) {
      if (event.target.name === "exception_kind") {
        var row = event.target.closest(".exception-row");
        syncKind(row);
        if (event.target.value === "hours") {
          row.querySelector(".exception-hours").focus();
        }
      }
    });
  }

  /* --- copy buttons and confirmations -------------------------------------------- */

  each(".copy-button", function (button) {
    var label = button.querySelector("span");
    var original = label.textContent;
    button.addEventListener("click", function () {
      var text = document.getElementById(button.getAttribute("data-copy")).textContent;
      var done = function (ok) {
        label.textContent = ok ? texts.copied : texts.copy_failed;
        setTimeout(function () {
          label.textContent = original;
        }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () {
            done(true);
          },
          function () {
            done(false);
          }
        );
      } else {
        var selection = window.getSelection();
        var range = document.createRange();
        range.selectNodeContents(document.getElementById(button.getAttribute("data-copy")));
        selection.removeAllRanges();
        selection.addRange(range);
        var ok = false;
        try {
          ok = document.execCommand("copy");
        } catch (error) {
          ok = false;
        }
        done(ok);
      }
    });
  });

  each("form[data-confirm]", function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  connect();
})();
