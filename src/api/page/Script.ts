/**
 * The operator page's script, plain browser JavaScript with no framework and no build: it signs in, calls
 * the API (sending the session's CSRF token with every change), follows a run's Server-Sent Events and
 * draws the graph and the charts as SVG. Every text from the API is set with textContent, never as HTML.
 * (A String.raw constant: so the code holds no backtick and no dollar-brace.)
 */
export const script = String.raw`"use strict";
(function () {
  var API = "/api/v1/autopilot";
  var SVG = "http://www.w3.org/2000/svg";
  var AXES = ["seconds", "tool_calls", "tokens", "dollars", "iterations"];
  var AXIS_NAMES = { seconds: "Time", tool_calls: "Tool calls", tokens: "Tokens", dollars: "Dollars", iterations: "Iterations" };
  var STOPPABLE = { running: true };
  var SHOWN_STEPS = 50;
  var CANCELLABLE = { draft: true, approved: true, scheduled: true, running: true, partial: true, halted: true };

  var state = { session: null, timers: [], stream: null, generation: 0 };

  // ---------------------------------------------------------------------------------------------------
  // DOM helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = String(value);
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value === true ? "" : String(value));
    });
  }

  function append(node, children) {
    if (children === undefined || children === null) return;
    (Array.isArray(children) ? children : [children]).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function show(id, visible) { $(id).hidden = !visible; }

  function notice(message) {
    var box = $("notice");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // ---------------------------------------------------------------------------------------------------
  // Formatting

  function money(value) {
    if (value === null || value === undefined) return "—";
    if (value === 0) return "$0";
    return value < 0.01 ? "$" + value.toFixed(5) : "$" + value.toFixed(2);
  }

  function duration(seconds) {
    if (!isFinite(seconds)) return "—";
    seconds = Math.max(0, Math.round(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + s + "s";
    return s + "s";
  }

  function whole(value) { return Math.round(value).toLocaleString("en-US"); }

  function quantity(axis, value) {
    if (value === null || value === undefined) return "—";
    if (axis === "dollars") return money(value);
    if (axis === "seconds") return duration(value);
    return whole(value);
  }

  function age(iso) {
    if (!iso) return "—";
    var seconds = (Date.now() - Date.parse(iso)) / 1000;
    if (seconds < 60) return "just now";
    return duration(seconds) + " ago";
  }

  function timeCell(iso) {
    return el("td", null, el("time", { datetime: iso || "", title: iso || "", text: age(iso) }));
  }

  function statusText(status) { return el("span", { "class": "status s-" + status, text: status }); }

  function runLink(id) { return el("a", { href: "#/runs/" + encodeURIComponent(id), text: id }); }

  function missionLink(id) { return el("a", { href: "#/missions/" + encodeURIComponent(id), text: id }); }

  // ---------------------------------------------------------------------------------------------------
  // The API

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  /** A call to the API with the sign-in cookie; a change carries the session's CSRF token. */
  async function api(method, path, body) {
    var headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (method !== "GET" && state.session) headers["x-csrf-token"] = state.session.csrf_token;
    var response = await fetch(path, { method: method, headers: headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    var text = await response.text();
    var data = null;
    try { data = text === "" ? null : JSON.parse(text); } catch (e) { data = null; }
    if (!response.ok) {
      var error = data && data.error ? data.error : { code: "http_" + response.status, message: "the server answered " + response.status };
      if (response.status === 401 && path !== "/api/v1/session") signedOut("Your session has ended: sign in again.");
      throw new ApiError(response.status, error.code, error.message);
    }
    return data;
  }

  /** Runs an action of a button, showing its failure, with the button disabled meanwhile. */
  async function act(button, action) {
    if (button) button.disabled = true;
    notice("");
    try { await action(); } catch (error) { notice(error && error.message ? error.message : String(error)); } finally { if (button) button.disabled = false; }
  }

  // ---------------------------------------------------------------------------------------------------
  // Signing in and out

  function signedIn(session) {
    state.session = session;
    $("who").textContent = (session.admin ? "Admin" : "Project token") + " · project " + session.project;
    $("who").title = session.expires_at ? "Signed in until " + new Date(session.expires_at).toLocaleString() : "";
    show("who", true);
    show("sign-out", true);
    // Fine-tunes are the instance's, so the admin's to see (the API refuses a project's token).
    show("nav", true);
    show("nav-finetunes", session.admin === true);
    show("sign-in", false);
    route();
  }

  function signedOut(message) {
    state.session = null;
    leave();
    show("who", false);
    show("sign-out", false);
    show("overview", false);
    show("detail", false);
    show("finetunes", false);
    show("nav", false);
    show("sign-in", true);
    $("sign-in-error").textContent = message || "";
    $("token").focus();
  }

  $("sign-in-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("token");
    var token = input.value.trim();
    if (token === "") { $("sign-in-error").textContent = "Enter a token."; input.focus(); return; }
    var button = event.target.querySelector("button");
    button.disabled = true;
    api("POST", "/api/v1/session", { token: token }).then(function (session) {
      input.value = "";
      $("sign-in-error").textContent = "";
      signedIn(session);
    }, function (error) {
      $("sign-in-error").textContent = "Not signed in: " + error.message;
      input.focus();
    }).then(function () { button.disabled = false; });
  });

  // Signing out ends the session on the server. A 401 means it had ended already; any other failure leaves
  // it valid there, so the page says so rather than pretend.
  $("sign-out").addEventListener("click", function () {
    var button = $("sign-out");
    button.disabled = true;
    api("DELETE", "/api/v1/session").then(function () { signedOut("Signed out."); }, function (error) {
      if (error.status === 401) signedOut("Signed out.");
      else notice("Not signed out: " + error.message + ". The session stays valid until it is signed out or expires.");
    }).then(function () { button.disabled = false; });
  });

  // ---------------------------------------------------------------------------------------------------
  // Views: #/ (overview), #/missions/ID, #/runs/ID

  /** Ends what the current view keeps going: its timers and its event stream. */
  function leave() {
    state.generation += 1;
    state.timers.forEach(function (t) { clearInterval(t); clearTimeout(t); });
    state.timers = [];
    if (state.stream) { state.stream.close(); state.stream = null; }
  }

  function route() {
    if (!state.session) return;
    leave();
    notice("");
    var hash = location.hash.replace(/^#/, "");
    var mission = /^\/missions\/([^/]+)$/.exec(hash);
    var run = /^\/runs\/([^/]+)$/.exec(hash);
    if (mission) return openDetail({ mission: decodeURIComponent(mission[1]) });
    if (run) return openDetail({ run: decodeURIComponent(run[1]) });
    var finetunes = /^\/finetunes(?:\/([^/]+))?$/.exec(hash);
    if (finetunes) return openFineTunes(finetunes[1] ? decodeURIComponent(finetunes[1]) : null);
    openOverview();
  }

  window.addEventListener("hashchange", route);

  // ---------------------------------------------------------------------------------------------------
  // The overview: goal box, missions, runs, spend

  function openOverview() {
    show("detail", false);
    show("finetunes", false);
    show("overview", true);
    document.title = "autopilot · operator";
    refreshOverview();
    // Not while the keyboard is in a list: redrawing it would lose the focus.
    state.timers.push(setInterval(function () {
      var inList = document.activeElement && document.activeElement.closest && document.activeElement.closest("table");
      if (!document.hidden && !inList) refreshOverview();
    }, 5000));
  }

  async function refreshOverview() {
    var generation = state.generation;
    try {
      var results = await Promise.all([api("GET", API + "/missions"), api("GET", API + "/runs?limit=200"), api("GET", API + "/spend")]);
      if (generation !== state.generation) return;
      renderMissions(results[0], results[1]);
      renderRuns(results[1]);
      renderCostChart(results[2].runs);
      renderModelChart(results[2].models);
    } catch (error) {
      if (generation === state.generation) notice("The lists could not be loaded: " + error.message);
    }
  }

  function emptyRow(body, columns, text) {
    body.appendChild(el("tr", null, el("td", { colspan: columns, "class": "empty", text: text })));
  }

  function renderMissions(missions, runs) {
    var cost = {};
    runs.forEach(function (run) { cost[run.run_id] = run.cost_usd; });
    var body = $("missions").tBodies[0];
    clear(body);
    if (missions.length === 0) return emptyRow(body, 6, "No missions yet: route a goal above.");
    missions.slice().sort(function (a, b) { return b.created_at.localeCompare(a.created_at); }).forEach(function (m) {
      body.appendChild(el("tr", { "data-mission": m.mission_id }, [
        el("td", null, missionLink(m.mission_id)),
        el("td", { "class": "clip", title: m.goal, text: m.goal }),
        el("td", { text: m.blueprint_id }),
        el("td", null, statusText(m.status)),
        el("td", { "class": "num", text: money(cost[m.mission_id]) }),
        timeCell(m.created_at)
      ]));
    });
  }

  function renderRuns(runs) {
    var body = $("runs").tBodies[0];
    clear(body);
    if (runs.length === 0) return emptyRow(body, 6, "No runs yet.");
    runs.forEach(function (r) {
      var status = r.interrupted ? "interrupted" : r.status;
      body.appendChild(el("tr", { "data-run": r.run_id }, [
        el("td", null, runLink(r.run_id)),
        el("td", { "class": "clip", title: r.objective || "", text: r.objective || "" }),
        el("td", null, statusText(status)),
        el("td", { "class": "num", text: r.iterations === null ? "—" : whole(r.iterations) }),
        el("td", { "class": "num", text: money(r.cost_usd) }),
        timeCell(r.created_at || r.updated_at)
      ]));
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // The goal box: route, pick, synthesize, fill the missing slots, approve

  $("goal-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var goal = $("goal").value.trim();
    if (goal === "") { notice("Write a goal first."); $("goal").focus(); return; }
    var button = event.target.querySelector("button");
    act(button, function () { return submitGoal({ goal: goal }); });
  });

  async function submitGoal(request) {
    var box = $("goal-result");
    clear(box);
    box.appendChild(el("p", { "class": "help", text: request.synthesize ? "Writing a blueprint for the goal…" : "Routing…" }));
    var outcome;
    try { outcome = await api("POST", API + "/goal", request); } catch (error) { clear(box); throw error; }
    await renderOutcome(request.goal, outcome);
    refreshOverview();
  }

  function titleOf(candidate) {
    try { return JSON.parse(candidate.blueprint_json).title || candidate.blueprint_id; } catch (e) { return candidate.blueprint_id; }
  }

  function candidateList(goal, candidates) {
    return el("ol", { "class": "candidates" }, candidates.map(function (c, i) {
      var pick = el("button", { type: "button", text: "Pick", "aria-label": "Pick " + titleOf(c) });
      pick.addEventListener("click", function () { act(pick, function () { return submitGoal({ goal: goal, pick: i + 1 }); }); });
      return el("li", null, [el("span", null, [el("strong", { text: titleOf(c) }), " (" + c.blueprint_id + ", score " + c.score.toFixed(2) + ")"]), pick]);
    }));
  }

  /** The offer to write a blueprint: the admin's alone, as the catalog it adds to is the whole instance's. */
  function offerSynthesis(box, goal, lead) {
    if (!state.session || !state.session.admin) {
      box.appendChild(el("p", { "class": "help", id: "synthesis-admin-only", text: "Only the admin token may have a new blueprint written: the catalog is the whole instance's." }));
      return;
    }
    if (lead) box.appendChild(el("p", { "class": "help", text: lead }));
    var button = el("button", { type: "button", text: "Write a new blueprint for this goal" });
    button.addEventListener("click", function () { act(button, function () { return submitGoal({ goal: goal, synthesize: true }); }); });
    box.appendChild(button);
  }

  async function renderOutcome(goal, outcome) {
    var box = $("goal-result");
    clear(box);
    box.setAttribute("data-kind", outcome.kind);
    if (outcome.kind === "picker_needed") {
      box.appendChild(el("h3", { tabindex: "-1", text: "Several blueprints fit, none surely: pick one" }));
      box.appendChild(candidateList(goal, outcome.candidates));
      offerSynthesis(box, goal, "Or have one written for this goal:");
    } else if (outcome.kind === "synthesis_needed") {
      box.appendChild(el("h3", { tabindex: "-1", text: "No blueprint fits this goal well enough" }));
      offerSynthesis(box, goal);
      if (outcome.candidates.length > 0) {
        box.appendChild(el("p", { "class": "help", text: "Or pick the nearest anyway:" }));
        box.appendChild(candidateList(goal, outcome.candidates));
      }
    } else {
      await renderDraft(outcome);
    }
    var heading = box.querySelector("h3");
    if (heading) heading.focus();
  }

  /** A draft mission: its preview, a field per missing slot, and approve or cancel. */
  async function renderDraft(outcome) {
    var box = $("goal-result");
    var id = outcome.mission_id;
    box.appendChild(el("h3", { tabindex: "-1", text: "Draft mission " + id + " from " + outcome.blueprint_id + " (score " + outcome.score.toFixed(2) + ")" }));
    box.appendChild(el("pre", { text: outcome.preview }));
    (outcome.invalid_slots || []).forEach(function (problem) {
      box.appendChild(el("p", { "class": "help", text: "Not taken from the goal: " + problem.message + "." }));
    });
    var slots = {};
    if (outcome.missing_slots.length > 0) {
      var mission = await api("GET", API + "/missions/" + encodeURIComponent(id));
      (mission.blueprint && mission.blueprint.slots || []).forEach(function (s) { slots[s.name] = s; });
    }
    var form = el("form", { "class": "approve", novalidate: true });
    var fields = outcome.missing_slots.map(function (name) {
      var slot = slots[name] || { name: name, type: "text", description: "" };
      var help = (slot.description || "") + (/_list$/.test(slot.type) ? " Several values: separate them with commas." : "");
      var fieldId = "slot-" + name;
      var input;
      if (slot.type === "enum" && Array.isArray(slot.values)) {
        input = el("select", { id: fieldId, name: name, required: true, "aria-describedby": help ? fieldId + "-help" : null }, slot.values.map(function (v) { return el("option", { value: v, text: v }); }));
      } else {
        input = el("input", { id: fieldId, name: name, type: "text", required: true, "aria-describedby": help ? fieldId + "-help" : null });
      }
      form.appendChild(el("label", { "for": fieldId, text: name + " (missing)" }));
      form.appendChild(input);
      if (help) form.appendChild(el("p", { id: fieldId + "-help", "class": "help", text: help.trim() }));
      return { name: name, slot: slot, input: input };
    });
    var approve = el("button", { type: "submit", text: "Approve" });
    var cancel = el("button", { type: "button", "class": "danger", text: "Cancel the draft" });
    form.appendChild(el("div", { "class": "actions" }, [approve, cancel]));
    box.appendChild(form);
    box.appendChild(el("p", null, ["Open ", missionLink(id)]));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      act(approve, async function () {
        var values = {};
        for (var i = 0; i < fields.length; i++) {
          var value = fields[i].input.value.trim();
          if (value === "") { fields[i].input.focus(); throw new Error("Give " + fields[i].name + " a value before approving."); }
          // As typed: the server reads a list comma-separated and a number from its digits, as for the CLI.
          values[fields[i].name] = value;
        }
        var approved = await api("POST", API + "/missions/" + encodeURIComponent(id) + "/approve", { slots: values });
        clear(box);
        box.appendChild(el("h3", { tabindex: "-1", text: "Mission " + id + " is " + approved.status }));
        box.appendChild(el("p", null, [el("a", { href: "#/missions/" + encodeURIComponent(id), id: "watch-mission", text: "Watch mission " + id + " →" })]));
        $("watch-mission").focus();
        refreshOverview();
      });
    });
    cancel.addEventListener("click", function () {
      act(cancel, async function () {
        var cancelled = await api("DELETE", API + "/missions/" + encodeURIComponent(id));
        clear(box);
        box.appendChild(el("h3", { tabindex: "-1", text: "Mission " + id + " is " + cancelled.status }));
        box.appendChild(el("p", { text: cancelled.message }));
        box.querySelector("h3").focus();
        refreshOverview();
      });
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // A mission or a run, live

  /** What the detail view shows now: the run's caps, the samples the ETA is drawn from, the mission's graph. */
  var detail = null;

  function openDetail(target) {
    show("overview", false);
    show("finetunes", false);
    show("detail", true);
    detail = { target: target, runId: null, stepsThrough: 0, mission: null, caps: {}, first: {}, last: {}, lastSeq: -1, status: null, nodes: {}, graph: null, committed: 0, live: null };
    $("detail-title").textContent = target.mission ? "Mission " + target.mission : "Run " + target.run;
    document.title = $("detail-title").textContent + " · autopilot";
    $("detail-status").textContent = "Loading…";
    ["budget", "criteria", "answer", "artifacts", "events", "graph", "graph-list", "answer-source"].forEach(function (id) { clear($(id)); });
    clear($("steps").tBodies[0]);
    $("stream-state").textContent = "";
    show("graph-card", false);
    show("stop", false);
    show("cancel", false);
    $("detail-title").setAttribute("tabindex", "-1");
    $("detail-title").focus();
    var generation = state.generation;
    (target.mission ? loadMission(generation) : attachRun(target.run, generation)).catch(function (error) {
      if (generation === state.generation) { $("detail-status").textContent = ""; notice(error.message); }
    });
  }

  function current(generation) { return generation === state.generation && detail !== null; }

  async function loadMission(generation) {
    var mission = await api("GET", API + "/missions/" + encodeURIComponent(detail.target.mission) + "?steps=true");
    if (!current(generation)) return;
    detail.mission = mission;
    $("detail-title").textContent = "Mission " + mission.mission_id + ": " + mission.goal;
    drawGraph(mission);
    renderMissionSteps(mission);
    missionStatus(mission);
    if (mission.run && detail.runId === null) return attachRun(mission.run.run_id, generation);
    if (!mission.run) {
      // Approved, not started yet: the daemon starts it; look again until it has.
      state.timers.push(setTimeout(function () { if (current(generation)) loadMission(generation).catch(function (e) { notice(e.message); }); }, 1000));
    }
  }

  function missionStatus(mission) {
    detail.status = mission.status;
    var line = "Status: " + mission.status + " · blueprint " + mission.blueprint_id + " · created " + age(mission.created_at);
    if (!mission.run && (mission.status === "scheduled" || mission.status === "approved")) line += " · waiting for a daemon to start its run";
    $("detail-status").textContent = line;
    show("cancel", CANCELLABLE[mission.status] === true);
    show("stop", mission.status === "running");
  }

  async function attachRun(runId, generation) {
    detail.runId = runId;
    // The latest steps only: a run of ten thousand iterations must not load them all.
    var run = await api("GET", API + "/runs/" + encodeURIComponent(runId) + "?steps=" + SHOWN_STEPS);
    if (!current(generation)) return;
    if (!detail.mission) $("detail-title").textContent = "Run " + run.run_id + ": " + run.goal.objective;
    detail.status = run.status;
    renderRunStatus(run.status, run.halt_reason);
    setCaps(run.policy);
    AXES.forEach(function (axis) { observe(axis, run.usage[axis], Date.parse(run.updated_at)); });
    renderCriteria(run.goal.success_criteria, run.criteria_met);
    if (!detail.mission) run.steps.forEach(addStep);
    setAnswer(run.output, detail.mission ? "The mission's latest node output" : "The run's latest answer");
    refreshArtifacts();
    // An ended run's stream replays its events for the log, then ends by itself after the result.
    follow(runId, generation);
  }

  function renderRunStatus(status, reason) {
    detail.status = status;
    var line = "Run " + detail.runId + ": " + status + (reason ? " (" + reason + ")" : "");
    if (detail.mission) line = "Mission status: " + (detail.mission.status) + " · " + line;
    $("detail-status").textContent = line;
    show("stop", STOPPABLE[status] === true);
    if (detail.mission) show("cancel", CANCELLABLE[detail.mission.status] === true);
    // An ETA is only for a run that is still spending.
    AXES.forEach(renderAxis);
  }

  function follow(runId, generation) {
    var source = new EventSource(API + "/runs/" + encodeURIComponent(runId) + "/events");
    state.stream = source;
    var badge = $("stream-state");
    badge.textContent = "connecting";
    source.onopen = function () {
      if (!current(generation)) return;
      badge.textContent = "live";
      // A stream (re)opened sends the answer's text so far again: start it afresh rather than twice.
      if (detail.live) detail.live.text = "";
    };
    var kinds = ["run_started", "iteration", "heartbeat", "tool_call", "criteria_satisfied", "judge_invalid", "critic", "budget_exceeded",
      "checkpoint_quarantined", "model_unpriced", "model_retry", "halt_requested", "result", "fanout_started", "fanout_child", "artifact",
      "healing", "node_started", "node_ended", "breaker_opened"];
    kinds.forEach(function (kind) {
      source.addEventListener(kind, function (message) {
        if (!current(generation)) return;
        var event;
        try { event = JSON.parse(message.data); } catch (e) { return; }
        onEvent(event, runId, generation);
      });
    });
    source.addEventListener("delta", function (message) {
      if (!current(generation)) return;
      var delta;
      try { delta = JSON.parse(message.data); } catch (e) { return; }
      onDelta(delta, generation);
    });
    source.addEventListener("server_shutdown", function () {
      // The browser comes back by itself with Last-Event-ID, and the stream goes on where it was.
      if (current(generation)) badge.textContent = "server restarting: reconnecting";
    });
    source.addEventListener("unauthorized", function () {
      source.close();
      if (current(generation)) signedOut("Your session has ended: sign in again.");
    });
    source.addEventListener("interrupted", function (message) {
      source.close();
      if (!current(generation)) return;
      badge.textContent = "ended";
      if (detail.live) {
        // The text being written when the run's process went away is all there will be of it.
        if (detail.live.timer) clearTimeout(detail.live.timer);
        $("answer").removeAttribute("aria-busy");
        $("answer").textContent = detail.live.text;
        $("answer-source").textContent = "Iteration " + detail.live.iteration + "'s answer, cut off when the run's process went away";
        detail.live = null;
      }
      var body = parseError(message.data);
      renderRunStatus("interrupted", body);
    });
    source.addEventListener("error", function (message) {
      if (!current(generation)) return;
      if (message && message.data) {
        // The server's own last word: reading the run failed.
        source.close();
        badge.textContent = "failed";
        notice("The event stream failed: " + parseError(message.data));
      } else if (source.readyState === EventSource.CLOSED) {
        badge.textContent = "closed";
      } else {
        badge.textContent = "reconnecting";
      }
    });
  }

  function parseError(data) {
    try { return JSON.parse(data).error.message; } catch (e) { return String(data); }
  }

  function onEvent(event, runId, generation) {
    if (event.seq <= detail.lastSeq) return;
    detail.lastSeq = event.seq;
    logEvent(event);
    var at = Date.parse(event.at);
    if (event.kind === "run_started") setCaps(event.policy);
    if (event.remaining) {
      AXES.forEach(function (axis) {
        var cap = detail.caps[axis];
        var left = event.remaining[axis];
        if (left !== null && cap !== undefined && cap > 0) observe(axis, cap - left, at);
        else renderAxis(axis);
      });
    }
    if (event.criteria_met) markCriteria(event.criteria_met);
    switch (event.kind) {
      case "model_retry":
        // The call is made again, and its answer streamed again from its start.
        if (detail.live && detail.live.iteration === event.iteration) detail.live.text = "";
        break;
      case "iteration":
        detail.committed = Math.max(detail.committed, event.iteration);
        // A replayed iteration that the table already holds (or that is older than it) needs no request.
        if (!detail.mission && event.iteration > detail.stepsThrough) latestSteps(runId, Math.min(SHOWN_STEPS, event.iteration - detail.stepsThrough), generation);
        break;
      case "node_started":
        setNode(event.node, "running");
        break;
      case "node_ended":
        setNode(event.node, event.status);
        refreshMission(generation);
        break;
      case "artifact":
        refreshArtifacts();
        break;
      case "halt_requested":
        $("detail-status").textContent = "Stopping: " + event.reason;
        break;
      case "result":
        state.stream.close();
        $("stream-state").textContent = "ended";
        if (event.output || detail.live) setAnswer(event.output, "The final answer", true);
        refreshArtifacts();
        if (detail.mission) refreshMission(generation).then(function () { renderRunStatus(event.status, event.halt_reason); });
        else renderRunStatus(event.status, event.halt_reason);
        break;
    }
  }

  function logEvent(event) {
    var list = $("events");
    var text = event.kind;
    if (event.kind === "iteration") text += " " + event.iteration + ": " + event.summary;
    else if (event.kind === "node_started") text += " " + event.node + " (attempt " + event.attempt + ")";
    else if (event.kind === "node_ended") text += " " + event.node + ": " + event.status + (event.reason ? " (" + event.reason + ")" : "");
    else if (event.kind === "result") text += ": " + event.status + (event.halt_reason ? " (" + event.halt_reason + ")" : "");
    else if (event.kind === "halt_requested" || event.kind === "budget_exceeded") text += ": " + event.reason;
    else if (event.kind === "artifact") text += " " + event.name + " v" + event.version;
    else if (event.kind === "tool_call") text += " " + event.name + (event.ok ? "" : " (failed)");
    list.insertBefore(el("li", { value: event.seq }, [el("time", { datetime: event.at, text: event.at.slice(11, 19) }), " " + text]), list.firstChild);
    while (list.children.length > 200) list.removeChild(list.lastChild);
  }

  // ---------------------------------------------------------------------------------------------------
  // Budget: one bar per axis, filled from what is left, with an ETA from the rate of use so far

  function setCaps(policy) {
    if (!policy) return;
    AXES.forEach(function (axis) { detail.caps[axis] = policy["max_" + axis]; });
    AXES.forEach(renderAxis);
  }

  /** A reading of an axis's use at a time (replayed ones come in any order): the earliest and the latest make the rate. */
  function observe(axis, used, at) {
    if (!isFinite(at)) at = Date.now();
    if (detail.first[axis] === undefined || at < detail.first[axis].at) detail.first[axis] = { used: used, at: at };
    if (detail.last[axis] === undefined || at >= detail.last[axis].at) detail.last[axis] = { used: used, at: at };
    renderAxis(axis);
  }

  function etaText(axis) {
    var cap = detail.caps[axis], first = detail.first[axis], last = detail.last[axis];
    if (!cap) return "No cap on this axis.";
    if (!last) return "";
    var left = Math.max(0, cap - last.used);
    if (left === 0) return "Spent.";
    if (STOPPABLE[detail.status] !== true) return "";
    var elapsed = (last.at - first.at) / 1000;
    var rate = elapsed > 0 ? (last.used - first.used) / elapsed : 0;
    if (!(rate > 0)) return "Not used yet: no ETA.";
    return "At this rate, spent in about " + duration(left / rate) + ".";
  }

  function renderAxis(axis) {
    var box = $("budget");
    var row = $("axis-" + axis);
    if (!row) {
      row = el("div", { "class": "axis", id: "axis-" + axis }, [
        el("label", { "for": "bar-" + axis }, [AXIS_NAMES[axis], el("span", { "class": "figures", id: "figures-" + axis })]),
        el("progress", { id: "bar-" + axis, max: "1", value: "0", "aria-describedby": "figures-" + axis + " eta-" + axis }),
        el("p", { "class": "eta", id: "eta-" + axis })
      ]);
      box.appendChild(row);
    }
    var cap = detail.caps[axis];
    var last = detail.last[axis];
    var used = last ? last.used : 0;
    var bar = $("bar-" + axis);
    if (cap) {
      bar.hidden = false;
      bar.max = cap;
      bar.value = Math.min(cap, Math.max(0, used));
      bar.setAttribute("data-used", String(used));
      $("figures-" + axis).textContent = quantity(axis, used) + " of " + quantity(axis, cap) + " · " + quantity(axis, Math.max(0, cap - used)) + " left";
    } else {
      bar.hidden = true;
      $("figures-" + axis).textContent = quantity(axis, used) + " used";
    }
    $("eta-" + axis).textContent = etaText(axis);
  }

  // ---------------------------------------------------------------------------------------------------
  // Criteria, steps, answer, artifacts

  function renderCriteria(criteria, met) {
    var list = $("criteria");
    clear(list);
    criteria.forEach(function (text, i) {
      list.appendChild(el("li", { "class": met[i] ? "met" : null }, [el("span", { "class": "sr-only", text: met[i] ? "Met: " : "Not met yet: " }), text]));
    });
    if (criteria.length === 0) list.appendChild(el("li", { "class": "empty", text: "None." }));
  }

  function markCriteria(met) {
    Array.prototype.forEach.call($("criteria").children, function (li, i) {
      if (met[i] === undefined) return;
      li.classList.toggle("met", met[i] === true);
      var label = li.querySelector(".sr-only");
      if (label) label.textContent = met[i] ? "Met: " : "Not met yet: ";
    });
  }

  function setAnswer(text, source, final) {
    // A committed answer replaces the live text; one older than the answer being written does not, until the run ends.
    if (!final && detail.live && detail.live.iteration > detail.committed) return;
    detail.live = null;
    $("answer").removeAttribute("aria-busy");
    $("answer").textContent = text || "";
    $("answer-source").textContent = text ? source : "Nothing written yet.";
  }

  /**
   * The act call's answer as it is written. Drawn at most a few times a second, with the answer busy
   * meanwhile, so a screen reader reads it once it is whole rather than every word as it comes.
   */
  function onDelta(delta, generation) {
    if (delta.purpose !== "act" || delta.iteration <= detail.committed) return;
    if (!detail.live || detail.live.iteration !== delta.iteration) detail.live = { iteration: delta.iteration, text: "", timer: null };
    detail.live.text += delta.text;
    if (detail.live.timer) return;
    detail.live.timer = setTimeout(function () {
      if (!current(generation) || !detail.live) return;
      detail.live.timer = null;
      var answer = $("answer");
      answer.setAttribute("aria-busy", "true");
      answer.textContent = detail.live.text;
      $("answer-source").textContent = "Iteration " + detail.live.iteration + "'s answer, being written";
      answer.scrollTop = answer.scrollHeight;
    }, 150);
  }

  function callRow(step, call, note) {
    return el("tr", null, [
      el("td", { text: step }),
      el("td", { text: call ? call.model_used : "—" }),
      el("td", { "class": "num", text: call ? whole(call.input_tokens) : "—" }),
      el("td", { "class": "num", text: call ? whole(call.output_tokens) : "—" }),
      el("td", { "class": "num", text: call ? (call.latency_ms / 1000).toFixed(2) + "s" : "—" }),
      el("td", { "class": "num", text: call ? money(call.cost_usd) : "—" }),
      el("td", { text: note || "" })
    ]);
  }

  /** A run's step: one row per model call it made, with the step's total on the first. */
  function addStep(step) {
    var body = $("steps").tBodies[0];
    if (step.iteration <= detail.stepsThrough) return;
    detail.stepsThrough = step.iteration;
    var calls = step.calls.length > 0 ? step.calls : [null];
    calls.forEach(function (call, i) {
      var row = callRow(i === 0 ? "Iteration " + step.iteration : "", call, (call ? call.purpose : "") + (i === 0 ? " · step " + money(step.cost_usd) : ""));
      if (i === 0) row.setAttribute("data-iteration", String(step.iteration));
      body.appendChild(row);
    });
  }

  /** The steps not shown yet (every one since the last shown, so two iterations in quick succession are both shown). */
  async function latestSteps(runId, count, generation) {
    var run = await api("GET", API + "/runs/" + encodeURIComponent(runId) + "?steps=" + count).catch(function () { return null; });
    if (!run || !current(generation)) return;
    run.steps.forEach(addStep);
    setAnswer(run.output, "Iteration " + run.iterations + "'s answer, as written");
  }

  /** A mission's node attempts, each with its telemetry. */
  function renderMissionSteps(mission) {
    var body = $("steps").tBodies[0];
    clear(body);
    var latest = null;
    (mission.steps || []).forEach(function (node) {
      node.attempts.forEach(function (a) {
        var t = a.telemetry;
        body.appendChild(callRow(a.node + " #" + a.attempt, t ? { model_used: t.model_used, input_tokens: t.input_tokens, output_tokens: t.output_tokens, latency_ms: t.latency_ms, cost_usd: t.cost_usd } : null, a.status + (a.reason ? ": " + a.reason : "")));
        if (a.output) latest = a;
      });
    });
    if (latest) setAnswer(latest.output, "Node " + latest.node + " (attempt " + latest.attempt + ") wrote");
  }

  async function refreshMission(generation) {
    var mission = await api("GET", API + "/missions/" + encodeURIComponent(detail.target.mission) + "?steps=true").catch(function () { return null; });
    if (!mission || !current(generation)) return;
    detail.mission = mission;
    renderMissionSteps(mission);
    (mission.steps || []).forEach(function (node) { setNode(node.node, node.status); });
  }

  async function refreshArtifacts() {
    var runId = detail.runId;
    var list = $("artifacts");
    var artifacts = await api("GET", API + "/runs/" + encodeURIComponent(runId) + "/artifacts").catch(function () { return null; });
    if (!artifacts || detail === null || detail.runId !== runId) return;
    clear(list);
    if (artifacts.length === 0) list.appendChild(el("li", { "class": "empty", text: "None yet." }));
    artifacts.forEach(function (a) {
      var href = API + "/runs/" + encodeURIComponent(runId) + "/artifact?name=" + encodeURIComponent(a.name);
      list.appendChild(el("li", null, [el("a", { href: href, download: a.name.split("/").pop(), text: a.name }), " (version " + a.latest.version + ", " + whole(a.latest.bytes) + " bytes)"]));
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Stop and cancel

  $("stop").addEventListener("click", function () {
    var button = $("stop");
    act(button, async function () {
      var reason = "stopped from the operator page";
      var path = detail.mission ? API + "/missions/" + encodeURIComponent(detail.mission.mission_id) + "/stop" : API + "/runs/" + encodeURIComponent(detail.runId) + "/stop";
      await api("POST", path, { reason: reason });
      $("detail-status").textContent = "Stop requested: the run halts at its next iteration boundary.";
    });
  });

  $("cancel").addEventListener("click", function () {
    var button = $("cancel");
    if (!detail.mission) return;
    act(button, async function () {
      var cancelled = await api("DELETE", API + "/missions/" + encodeURIComponent(detail.mission.mission_id));
      detail.mission.status = cancelled.status;
      $("detail-status").textContent = "Mission status: " + cancelled.status + " · " + cancelled.message;
      show("cancel", CANCELLABLE[cancelled.status] === true);
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // The agent graph, drawn by hand: columns by depth from the entry, each node with its state

  function layers(nodes, edges) {
    var depth = {};
    nodes.forEach(function (n) { depth[n] = 0; });
    // Longest path from a root; a graph is acyclic, and the bound stops a bad one from looping.
    for (var round = 0; round < nodes.length; round++) {
      var moved = false;
      edges.forEach(function (e) {
        if (depth[e.from] !== undefined && depth[e.to] !== undefined && depth[e.to] < depth[e.from] + 1) { depth[e.to] = depth[e.from] + 1; moved = true; }
      });
      if (!moved) break;
    }
    return depth;
  }

  function drawGraph(mission) {
    var graph = mission.blueprint && mission.blueprint.graph;
    if (!graph || !graph.nodes || graph.nodes.length === 0) return;
    show("graph-card", true);
    var ids = graph.nodes.map(function (n) { return n.id; });
    var edges = graph.edges || [];
    var depth = layers(ids, edges);
    var columns = [];
    ids.forEach(function (id) { (columns[depth[id]] = columns[depth[id]] || []).push(id); });
    var W = 160, H = 46, GX = 70, GY = 26, PAD = 16;
    var rows = Math.max.apply(null, columns.map(function (c) { return c.length; }));
    var width = PAD * 2 + columns.length * W + (columns.length - 1) * GX;
    var height = PAD * 2 + rows * H + (rows - 1) * GY;
    var at = {};
    columns.forEach(function (column, x) {
      var offset = (rows - column.length) * (H + GY) / 2;
      column.forEach(function (id, y) { at[id] = { x: PAD + x * (W + GX), y: PAD + offset + y * (H + GY) }; });
    });
    var root = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-labelledby": "graph-svg-title" }, [
      svg("title", { id: "graph-svg-title", text: "The agent graph of " + mission.blueprint_id + ": " + ids.length + " nodes" }),
      svg("defs", null, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" }, svg("path", { d: "M0,0 L10,5 L0,10 z", "class": "arrow" })))
    ]);
    edges.forEach(function (e) {
      var a = at[e.from], b = at[e.to];
      if (!a || !b) return;
      var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
      root.appendChild(svg("path", { "class": "edge", d: "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2, "marker-end": "url(#arrow)" }));
    });
    var list = $("graph-list");
    clear(list);
    detail.nodes = {};
    ids.forEach(function (id) {
      var p = at[id];
      var label = svg("text", { x: p.x + 10, y: p.y + 19, text: id.length > 20 ? id.slice(0, 19) + "…" : id });
      var stateText = svg("text", { "class": "state", x: p.x + 10, y: p.y + 36, text: "not run" });
      var title = svg("title", { text: id });
      var group = svg("g", { "class": "node n-not_run", "data-node": id }, [title, svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 8 }), label, stateText]);
      root.appendChild(group);
      var item = el("li", { "data-node": id, text: id + ": not run" });
      list.appendChild(item);
      detail.nodes[id] = { group: group, state: stateText, title: title, item: item };
    });
    var box = $("graph");
    clear(box);
    box.appendChild(root);
    (mission.steps || []).forEach(function (node) { setNode(node.node, node.status); });
  }

  function setNode(id, status) {
    var node = detail && detail.nodes[id];
    if (!node) return;
    var words = String(status).replace(/_/g, " ");
    node.group.setAttribute("class", "node n-" + status);
    node.group.setAttribute("data-state", status);
    node.state.textContent = words;
    node.title.textContent = id + ": " + words;
    node.item.textContent = id + ": " + words;
  }

  // ---------------------------------------------------------------------------------------------------
  // Charts: cost per run over time, spend per model

  function noData(box, text) { clear(box); box.appendChild(el("p", { "class": "empty", text: text })); }

  function dataTable(caption, head, rows) {
    return el("details", null, [
      el("summary", { text: "As a table" }),
      el("table", null, [
        el("caption", { "class": "sr-only", text: caption }),
        el("thead", null, el("tr", null, head.map(function (h) { return el("th", { scope: "col", text: h }); }))),
        el("tbody", null, rows.map(function (r) { return el("tr", null, r.map(function (c) { return el("td", { text: c }); })); }))
      ])
    ]);
  }

  function renderCostChart(runs) {
    var box = $("cost-chart");
    if (runs.length === 0) return noData(box, "No runs yet.");
    var W = 520, H = 220, L = 64, R = 14, T = 12, B = 34;
    var times = runs.map(function (r) { return Date.parse(r.created_at); });
    var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
    var top = Math.max.apply(null, runs.map(function (r) { return r.cost_usd; }));
    if (!(top > 0)) top = 0.01;
    var x = function (t) { return t1 === t0 ? L + (W - L - R) / 2 : L + (t - t0) / (t1 - t0) * (W - L - R); };
    var y = function (c) { return T + (1 - c / top) * (H - T - B); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-labelledby": "cost-chart-title", "data-points": runs.length });
    [0, 0.5, 1].forEach(function (f) {
      root.appendChild(svg("line", { "class": "grid", x1: L, x2: W - R, y1: y(top * f), y2: y(top * f) }));
      root.appendChild(svg("text", { x: L - 6, y: y(top * f) + 4, "text-anchor": "end", text: money(top * f) }));
    });
    root.appendChild(svg("line", { "class": "axis-line", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    root.appendChild(svg("text", { "class": "muted", x: L, y: H - 10, text: new Date(t0).toLocaleString() }));
    if (t1 !== t0) root.appendChild(svg("text", { "class": "muted", x: W - R, y: H - 10, "text-anchor": "end", text: new Date(t1).toLocaleString() }));
    runs.forEach(function (r, i) {
      var point = svg("circle", { "class": "point", cx: x(times[i]), cy: y(r.cost_usd), r: 4.5, "data-run": r.run_id }, svg("title", { text: r.run_id + " (" + r.kind + ", " + r.status + "): " + money(r.cost_usd) + ", " + r.created_at }));
      root.appendChild(point);
    });
    clear(box);
    box.appendChild(root);
    box.appendChild(dataTable("Cost per run", ["Run", "Kind", "Status", "Started", "Cost"], runs.map(function (r) { return [r.run_id, r.kind, r.status, r.created_at, money(r.cost_usd)]; })));
  }

  function renderModelChart(models) {
    var box = $("model-chart");
    if (models.length === 0) return noData(box, "No model calls yet.");
    var W = 520, ROW = 30, L = 150, R = 90, T = 6;
    var H = T * 2 + models.length * ROW;
    var top = Math.max.apply(null, models.map(function (m) { return m.cost_usd; }));
    if (!(top > 0)) top = 1;
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-labelledby": "model-chart-title", "data-models": models.length });
    models.forEach(function (m, i) {
      var y0 = T + i * ROW;
      var width = Math.max(2, m.cost_usd / top * (W - L - R));
      root.appendChild(svg("text", { x: L - 8, y: y0 + ROW / 2 + 4, "text-anchor": "end", text: m.model.length > 22 ? m.model.slice(0, 21) + "…" : m.model }));
      root.appendChild(svg("rect", { "class": "bar", x: L, y: y0 + 5, width: width, height: ROW - 10, rx: 3, "data-model": m.model }, svg("title", { text: m.model + ": " + money(m.cost_usd) + " over " + m.calls + " calls" })));
      root.appendChild(svg("text", { x: L + width + 6, y: y0 + ROW / 2 + 4, text: money(m.cost_usd) }));
    });
    clear(box);
    box.appendChild(root);
    box.appendChild(dataTable("Spend per model", ["Model", "Calls", "Tokens in", "Tokens out", "Cost"], models.map(function (m) { return [m.model, whole(m.calls), whole(m.input_tokens), whole(m.output_tokens), money(m.cost_usd)]; })));
  }

  // ---------------------------------------------------------------------------------------------------
  // Fine-tunes: #/finetunes lists the jobs, #/finetunes/ID shows one's report and its cost-per-step curve

  var VERDICTS = { promotable: "Promotable", candidate: "Stays a candidate" };
  var MARKERS = { promoted: "promoted", rolled_back: "rolled back", replaced: "replaced" };

  function openFineTunes(id) {
    show("overview", false);
    show("detail", false);
    show("finetunes", true);
    show("ft-detail", false);
    $("ft-error").textContent = "";
    document.title = (id ? "Fine-tune " + id : "Fine-tunes") + " · autopilot";
    var generation = state.generation;
    var loads = [api("GET", API + "/finetunes").then(function (jobs) { if (generation === state.generation) renderFineTunes(jobs, id); })];
    if (id) loads.push(api("GET", API + "/finetunes/" + encodeURIComponent(id)).then(function (detail) { if (generation === state.generation) renderFineTune(detail); }));
    Promise.all(loads).catch(function (error) {
      if (generation === state.generation) $("ft-error").textContent = (id ? "Fine-tune " + id : "The fine-tunes") + " could not be loaded: " + error.message;
    });
    $(id ? "ft-title" : "finetunes-title").focus();
  }

  function perStep(value) {
    if (value === null || value === undefined) return "—";
    return "$" + Number(value.toPrecision(3));
  }

  function percent(rate) { return (rate * 100).toFixed(1) + "%"; }

  function renderFineTunes(jobs, chosen) {
    var body = $("ft-jobs").tBodies[0];
    clear(body);
    if (jobs.length === 0) return emptyRow(body, 7, "No fine-tune jobs yet: the daemon starts one when a dataset reaches its threshold.");
    jobs.forEach(function (l) {
      var j = l.job;
      body.appendChild(el("tr", { "data-job": j.id, "aria-current": j.id === chosen ? "true" : null }, [
        el("td", { "class": "id" }, el("a", { href: "#/finetunes/" + encodeURIComponent(j.id), text: j.id })),
        el("td", { text: j.dataset_id }),
        el("td", null, statusText(j.status)),
        el("td", { "class": "clip", title: j.fine_tuned_model || j.base_model, text: j.fine_tuned_model || j.base_model + " (base)" }),
        el("td", { "class": l.verdict ? "verdict v-" + l.verdict : "empty", text: l.verdict ? VERDICTS[l.verdict] : "not evaluated" }),
        el("td", { text: l.takes_traffic ? "takes " + l.traffic_scope : "none" }),
        timeCell(j.created_at)
      ]));
    });
  }

  function renderFineTune(d) {
    var j = d.job;
    show("ft-detail", true);
    $("ft-title").textContent = "Fine-tune " + j.id + " of " + j.dataset_id;
    $("ft-status").textContent = j.status + " · " + (j.fine_tuned_model || "no model yet") + " · base " + j.base_model + " · " + j.samples + " samples" +
      (d.takes_traffic ? " · takes the traffic of " + d.scope : " · takes no traffic") + (j.error ? " · " + j.error : "");
    renderReport(d);
    renderCurve(d.curve, d.scope);
    var routes = $("ft-routes");
    clear(routes);
    if (d.routes.length === 0) routes.appendChild(el("li", { "class": "empty", text: "Never promoted." }));
    d.routes.forEach(function (r) {
      routes.appendChild(el("li", { "data-route": r.id }, r.id + ": " + r.model + " for " + r.scope + ", promoted " + r.promoted_at +
        (r.retired_at ? ", retired " + r.retired_at + " (" + r.retired_reason + ")" : ", active") + (r.replaces ? ", replacing " + r.replaces : "")));
    });
    var events = $("ft-events");
    clear(events);
    d.events.forEach(function (e) {
      events.appendChild(el("li", { text: e.at + " " + e.kind + (e.message ? ": " + e.message : "") }));
    });
  }

  /** The latest report, candidate and baseline side by side; each figure's cell carries its value as data. */
  function renderReport(d) {
    var box = $("ft-report");
    clear(box);
    var report = d.evaluations[0];
    if (!report) {
      box.appendChild(el("p", { "class": "empty", id: "ft-verdict", text: "Not evaluated yet: its model takes no traffic until an evaluation shows it passes as often and costs less." }));
      return;
    }
    box.appendChild(el("p", { id: "ft-verdict", "class": "verdict v-" + report.verdict, "data-verdict": report.verdict }, VERDICTS[report.verdict]));
    box.appendChild(el("p", { id: "ft-reason", text: report.reason }));
    var figures = [
      ["model", "Model", function (s) { return s.model; }, function (s) { return s.model; }],
      ["pass_rate", "Pass rate", function (s) { return s.pass_rate; }, function (s) { return percent(s.pass_rate) + " (" + s.passed + " of " + s.samples + ")"; }],
      ["cost_per_step_usd", "Cost per step", function (s) { return s.cost_per_step_usd; }, function (s) { return s.cost_per_step_usd === null ? "no price" : perStep(s.cost_per_step_usd); }],
      ["latency_per_step_ms", "Latency per step", function (s) { return s.latency_per_step_ms; }, function (s) { return whole(s.latency_per_step_ms) + " ms"; }],
      ["errors", "Errors", function (s) { return s.errors; }, function (s) { return whole(s.errors); }]
    ];
    box.appendChild(el("table", { id: "ft-report-table", "class": "report" }, [
      el("caption", { "class": "sr-only", text: "Evaluation " + report.id + ": the candidate and the baseline on " + report.candidate.samples + " held-out samples" }),
      el("thead", null, el("tr", null, [el("th", { scope: "col", text: "" }), el("th", { scope: "col", text: "Candidate" }), el("th", { scope: "col", text: "Baseline" })])),
      el("tbody", null, figures.map(function (f) {
        return el("tr", { "data-figure": f[0] }, [
          el("th", { scope: "row", text: f[1] }),
          el("td", { "class": f[0] === "model" ? "clip" : "num", "data-side": "candidate", "data-value": f[2](report.candidate), text: f[3](report.candidate) }),
          el("td", { "class": f[0] === "model" ? "clip" : "num", "data-side": "baseline", "data-value": f[2](report.baseline), text: f[3](report.baseline) })
        ]);
      }))
    ]));
    box.appendChild(el("p", { id: "ft-tolerance", "class": "help", "data-points": report.tolerance_points,
      text: "Tolerance: the candidate may pass at most " + report.tolerance_points + " points less often than the baseline, and must cost less a step. Scope " + (report.scope || "none") + "; evaluated " + report.evaluated_at + "; the evaluation cost " + money(report.cost_usd) + "." }));
    if (d.evaluations.length > 1) {
      box.appendChild(el("details", null, [el("summary", { text: "Earlier evaluations" }), el("ul", { "class": "plain" }, d.evaluations.slice(1).map(function (e) {
        return el("li", { text: e.evaluated_at + ": " + VERDICTS[e.verdict] + ", " + e.reason });
      }))]));
    }
  }

  /** The scope's cost per step, bucket by bucket: grey before the promotion, green after, each promotion and retirement a dashed line. */
  function renderCurve(curve, scope) {
    var box = $("ft-curve");
    var summary = $("ft-curve-summary");
    summary.textContent = "";
    if (!curve) return noData(box, "No scope to draw: its dataset names no blueprint, node or specialist, and it was never evaluated.");
    if (curve.buckets.length === 0) return noData(box, "No steps of " + scope + " captured yet.");
    var W = 520, H = 230, L = 64, R = 14, T = 22, B = 34;
    var times = [];
    curve.buckets.forEach(function (b) { times.push(Date.parse(b.from), Date.parse(b.to)); });
    curve.markers.forEach(function (m) { times.push(Date.parse(m.at)); });
    var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
    var top = Math.max.apply(null, curve.buckets.map(function (b) { return b.cost_per_step_usd; }));
    if (!(top > 0)) top = 0.001;
    var x = function (t) { return t1 === t0 ? L + (W - L - R) / 2 : L + (t - t0) / (t1 - t0) * (W - L - R); };
    var y = function (c) { return T + (1 - c / top) * (H - T - B); };
    var mid = function (b) { return (Date.parse(b.from) + Date.parse(b.to)) / 2; };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-labelledby": "ft-curve-title", "data-buckets": curve.buckets.length });
    [0, 0.5, 1].forEach(function (f) {
      root.appendChild(svg("line", { "class": "grid", x1: L, x2: W - R, y1: y(top * f), y2: y(top * f) }));
      root.appendChild(svg("text", { x: L - 6, y: y(top * f) + 4, "text-anchor": "end", text: perStep(top * f) }));
    });
    root.appendChild(svg("line", { "class": "axis-line", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    root.appendChild(svg("text", { "class": "muted", x: L, y: H - 10, text: new Date(t0).toLocaleString() }));
    if (t1 !== t0) root.appendChild(svg("text", { "class": "muted", x: W - R, y: H - 10, "text-anchor": "end", text: new Date(t1).toLocaleString() }));
    ["before", "after"].forEach(function (phase) {
      var side = curve.buckets.filter(function (b) { return b.phase === phase; });
      if (side.length === 0) return;
      var d = side.map(function (b, i) { return (i === 0 ? "M" : "L") + x(mid(b)).toFixed(1) + "," + y(b.cost_per_step_usd).toFixed(1); }).join(" ");
      root.appendChild(svg("path", { "class": "curve " + phase, "data-phase": phase, "data-points": side.length, d: d }));
    });
    curve.markers.forEach(function (m) {
      var at = x(Date.parse(m.at));
      root.appendChild(svg("line", { "class": "marker " + m.kind, "data-kind": m.kind, "data-at": m.at, x1: at, x2: at, y1: T - 6, y2: H - B }, svg("title", { text: MARKERS[m.kind] + " " + m.at + (m.reason ? ": " + m.reason : "") })));
      root.appendChild(svg("text", { "class": "marker-label " + m.kind, x: at + 3, y: T - 10 + (m.kind === "promoted" ? 0 : 10), text: MARKERS[m.kind] }));
    });
    curve.buckets.forEach(function (b) {
      root.appendChild(svg("circle", { "class": "point " + b.phase, cx: x(mid(b)), cy: y(b.cost_per_step_usd), r: 4, "data-phase": b.phase },
        svg("title", { text: b.from + " to " + b.to + " (" + b.phase + "): " + b.steps + " steps at " + perStep(b.cost_per_step_usd) + ", " + b.model_steps + " by the fine-tuned model" })));
    });
    clear(box);
    box.appendChild(root);
    box.appendChild(dataTable("Cost per step over time", ["From", "To", "Side", "Steps", "Cost per step", "Fine-tuned steps"], curve.buckets.map(function (b) {
      return [b.from, b.to, b.phase, whole(b.steps), perStep(b.cost_per_step_usd), whole(b.model_steps)];
    })));
    var before = curve.before, after = curve.after;
    summary.textContent = curve.promoted_at === null
      ? "Never promoted: " + perStep(before.cost_per_step_usd) + " a step over " + whole(before.steps) + " steps of " + scope + "."
      : "Before the promotion: " + perStep(before.cost_per_step_usd) + " a step over " + whole(before.steps) + " steps. After: " + perStep(after.cost_per_step_usd) + " a step over " + whole(after.steps) + " steps" +
        (curve.change === null ? "." : " (" + Math.abs(curve.change * 100).toFixed(1) + "% " + (curve.change <= 0 ? "cheaper" : "dearer") + ").");
  }

  // ---------------------------------------------------------------------------------------------------
  // Start: signed in already (the cookie survives a reload), or the sign-in form

  api("GET", "/api/v1/session").then(signedIn, function () { signedOut(""); });
})();
`
