/* colorbench Turing test page: one trial at a time, answers kept in localStorage, exported as JSON.
 * Works from file:// (the trials come from trials.js, a global: file:// pages cannot fetch JSON) and
 * sends nothing anywhere. The page does not know which side is real; design.json (not published) does.
 * body[data-state] is loading | intro | trial | done | error; body[data-trial] is the id of the trial
 * on screen once its images are shown (what a test driver waits for). */
(function () {
  "use strict";

  var study = window.COLORBENCH_TURING;
  var body = document.body;
  var byId = function (id) { return document.getElementById(id); };
  var pair = byId("pair");
  var images = { left: byId("left-img"), right: byId("right-img") };
  var session = null; // {format, version, study_id, rater, block, started, finished, time_limit_s, votes: []}
  var trials = [];
  var current = null; // the trial on screen: {trial, ready, expired, shownAt, timer}

  function setState(state) {
    ["intro", "trial", "done"].forEach(function (name) { byId(name).hidden = name !== state; });
    body.setAttribute("data-state", state);
    if (state !== "trial") body.setAttribute("data-trial", "");
  }

  function fail(message) {
    setState("error");
    byId("error").textContent = message;
    byId("error").hidden = false;
  }

  function storage() {
    try {
      var store = window.localStorage;
      store.setItem("colorbench-turing-probe", "1");
      store.removeItem("colorbench-turing-probe");
      return store;
    } catch (error) {
      return null;
    }
  }

  var store = storage();
  var storeKey = "colorbench-turing:" + (study && study.study_id);

  function save() {
    if (store) {
      try { store.setItem(storeKey, JSON.stringify(session)); } catch (error) { byId("storage-warning").hidden = false; }
    }
  }

  function saved() {
    if (!store) return null;
    try {
      var value = JSON.parse(store.getItem(storeKey));
      var valid = value && value.study_id === study.study_id && Array.isArray(value.votes) &&
        value.block >= 1 && value.block <= study.blocks.length;
      return valid ? value : null;
    } catch (error) {
      return null;
    }
  }

  function randomInt(below) {
    var word = new Uint32Array(1);
    window.crypto.getRandomValues(word);
    return word[0] % below;
  }

  function randomId() {
    var bytes = new Uint8Array(4);
    window.crypto.getRandomValues(bytes);
    return "rater-" + Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  /* Block k (1-based) from "#block=k" or "?block=k" in the address, else one at random. */
  function chooseBlock() {
    var count = study.blocks.length;
    var asked = /(?:^|[#?&])block=(\d+)/.exec(window.location.hash + "&" + window.location.search);
    if (asked && +asked[1] >= 1 && +asked[1] <= count) return +asked[1];
    return count === 1 ? 1 : 1 + randomInt(count);
  }

  function totals() {
    Array.prototype.forEach.call(document.querySelectorAll(".trial-total"), function (el) { el.textContent = trials.length; });
  }

  function start(name) {
    session = {
      format: study.format, version: study.version, study_id: study.study_id, rater: name || randomId(),
      block: chooseBlock(), started: new Date().toISOString(), finished: null, time_limit_s: study.time_limit_s,
      votes: []
    };
    save();
    resume();
  }

  function resume() {
    trials = study.blocks[session.block - 1];
    totals();
    next();
  }

  function next() {
    if (session.votes.length >= trials.length) finish();
    else show(trials[session.votes.length]);
  }

  function loadImage(img, src) {
    return new Promise(function (resolve, reject) {
      img.onload = resolve;
      img.onerror = function () { reject(new Error(src)); };
      img.src = src;
    }).then(function () { return img.decode ? img.decode().catch(function () {}) : null; });
  }

  function preload(trial) {
    if (trial) [trial.left, trial.right].forEach(function (src) { new Image().src = src; });
  }

  function show(trial) {
    var shown = { trial: trial, ready: false, expired: false, shownAt: 0, timer: null };
    current = shown;
    setState("trial");
    pair.classList.add("loading");
    pair.classList.remove("expired");
    byId("position").textContent = session.votes.length + 1;
    byId("progress").value = session.votes.length / trials.length;
    Promise.all([loadImage(images.left, trial.left), loadImage(images.right, trial.right)]).then(function () {
      if (current !== shown) return;
      pair.classList.remove("loading");
      window.requestAnimationFrame(function () {
        if (current !== shown) return;
        shown.ready = true;
        shown.shownAt = window.performance.now(); // response time counts from when both pictures are up
        body.setAttribute("data-trial", trial.id);
        if (study.time_limit_s > 0) {
          shown.timer = window.setTimeout(function () {
            shown.expired = true;
            pair.classList.add("expired");
          }, study.time_limit_s * 1000);
        }
        preload(trials[session.votes.length + 1]);
      });
    }, function (error) {
      fail("A picture of this study could not be loaded (" + error.message + "): is the study folder complete?");
    });
  }

  function choose(side) {
    var shown = current;
    if (!shown || !shown.ready || body.getAttribute("data-state") !== "trial") return;
    current = null;
    window.clearTimeout(shown.timer);
    var rt = Math.round(window.performance.now() - shown.shownAt);
    var limit = study.time_limit_s * 1000;
    body.setAttribute("data-trial", "");
    session.votes.push({ trial: shown.trial.id, choice: side, rt_ms: rt, timed_out: limit > 0 && (shown.expired || rt >= limit) });
    save();
    next();
  }

  function finish() {
    current = null;
    session.finished = session.finished || new Date().toISOString();
    save();
    byId("done-count").textContent = session.votes.length;
    byId("export-text").value = JSON.stringify(session, null, 1);
    setState("done");
  }

  function exportVotes() {
    var text = JSON.stringify(session, null, 1);
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text + "\n"], { type: "application/json" }));
    link.download = "votes-" + study.study_id + "-" + session.rater.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 40) + ".json";
    body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
  }

  function restart() {
    var answered = session ? session.votes.length : 0;
    if (answered && !window.confirm("Start over? The " + answered + " answers kept in this browser will be deleted.")) return;
    if (store) store.removeItem(storeKey);
    session = null;
    intro();
  }

  function intro() {
    setState("intro");
    byId("start-form").hidden = !!session;
    byId("resume").hidden = !session;
    byId("storage-warning").hidden = !!store;
    if (session) {
      trials = study.blocks[session.block - 1];
      totals();
      byId("resume-rater").textContent = session.rater;
      byId("resume-count").textContent = session.votes.length;
      byId("continue").focus();
    } else {
      byId("rater").focus();
    }
  }

  if (!study || !Array.isArray(study.blocks) || !study.blocks.length) {
    fail("The trial list (trials.js) is missing or broken: open index.html inside the study's site folder.");
    return;
  }
  byId("start-form").addEventListener("submit", function (event) {
    event.preventDefault();
    start(byId("rater").value.trim().slice(0, 80));
  });
  byId("continue").addEventListener("click", resume);
  ["left", "right"].forEach(function (side) {
    byId(side).addEventListener("click", function () { byId(side).blur(); choose(side); });
  });
  Array.prototype.forEach.call(document.querySelectorAll("button.export"), function (button) {
    button.addEventListener("click", exportVotes);
  });
  Array.prototype.forEach.call(document.querySelectorAll("button.restart"), function (button) {
    button.addEventListener("click", restart);
  });
  document.addEventListener("keydown", function (event) {
    if (event.repeat || event.altKey || event.ctrlKey || event.metaKey || body.getAttribute("data-state") !== "trial") return;
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      choose(event.key === "ArrowLeft" ? "left" : "right");
    }
  });

  session = saved();
  if (session && session.votes.length >= study.blocks[session.block - 1].length) {
    trials = study.blocks[session.block - 1];
    finish();
  } else {
    intro();
  }
})();
