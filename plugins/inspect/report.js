// egoforge inspect: filters, paging and sample cards. Every piece of data text goes to the page through
// textContent or an attribute, never through innerHTML, so questions and responses stay inert text.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("egoforge-data").textContent);
  var samples = DATA.samples;
  var byId = function (id) { return document.getElementById(id); };
  var filters = {
    domain: byId("f-domain"), category: byId("f-category"), verdict: byId("f-verdict"),
    issues: byId("f-issues"), q: byId("f-search"), size: byId("f-size")
  };
  var state = { domain: "", category: "", verdict: "", issues: "", q: "", page: 1, size: DATA.pageSize };
  var container = byId("samples");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clock(seconds) {
    if (seconds === null || seconds === undefined) return "";
    var minutes = Math.floor(seconds / 60);
    var rest = seconds - minutes * 60;
    var secs = Math.abs(rest - Math.round(rest)) < 1e-6 ? String(Math.round(rest)) : rest.toFixed(1);
    if (rest < 10) secs = "0" + secs;
    return minutes + ":" + secs;
  }

  function fillSelect(select, key) {
    var counts = {};
    samples.forEach(function (s) { var v = s[key] || ""; counts[v] = (counts[v] || 0) + 1; });
    Object.keys(counts).sort().forEach(function (value) {
      var option = el("option", null, (value || "(none)") + " (" + counts[value] + ")");
      option.value = value || "(none)";
      select.appendChild(option);
    });
  }

  function matches(s) {
    if (state.domain && (s.domain || "(none)") !== state.domain) return false;
    if (state.category && (s.category || "(none)") !== state.category) return false;
    if (state.verdict && s.verdict !== state.verdict) return false;
    if (state.issues === "yes" && !s.issues.length) return false;
    if (state.issues === "no" && s.issues.length) return false;
    if (state.q) {
      var needle = state.q.toLowerCase();
      if (String(s.id).toLowerCase().indexOf(needle) < 0 && s.question.toLowerCase().indexOf(needle) < 0) return false;
    }
    return true;
  }

  function shortProblem(problem) {  // the full reason is in the tooltip and in the row's issue list
    if (!problem) return "no image";
    if (/escapes/.test(problem)) return "path outside the data root";
    if (/not found/.test(problem)) return "file not found";
    if (/does not decode/.test(problem)) return "does not decode";
    return "unreadable";
  }

  function frameStrip(s) {
    var strip = el("div", "strip");
    s.frames.forEach(function (f) {
      var figure = el("figure");
      var title = f.field + (f.label ? " · " + f.label : "") + (f.t !== null ? " · t=" + clock(f.t) : "");
      if (f.src) {
        var img = el("img");
        img.loading = "lazy";
        img.decoding = "async";
        img.src = f.src;
        img.width = f.w;
        img.height = f.h;
        img.alt = title;
        img.title = title;
        if (f.href) {
          var link = el("a");
          link.href = f.href;
          link.target = "_blank";
          link.rel = "noopener";
          link.appendChild(img);
          figure.appendChild(link);
        } else {
          figure.appendChild(img);
        }
      } else {
        var missing = el("div", "missing", shortProblem(f.problem));
        missing.title = title + "\n" + (f.problem || "");
        figure.appendChild(missing);
      }
      figure.appendChild(el("figcaption", null, f.t !== null ? clock(f.t) : f.field));
      strip.appendChild(figure);
    });
    var imageCount = s.frames.filter(function (f) { return f.field.indexOf("videos") !== 0; }).length;
    if (s.framesTotal > imageCount && imageCount) {
      strip.appendChild(el("span", "more", "showing " + imageCount + " of " + s.framesTotal + " frames"));
    }
    return strip;
  }

  function optionList(s) {
    var list = el("ul", "options");
    var truth = (s.answer || "").replace(/[^A-Za-z]/g, "").toUpperCase();
    var picked = s.pred ? s.pred.prediction.toUpperCase() : "";
    s.options.forEach(function (o) {
      var item = el("li");
      var letter = o[0].toUpperCase();
      item.appendChild(el("span", "letter", o[0]));
      item.appendChild(document.createTextNode(o[1]));
      if (letter === truth) {
        item.classList.add("truth");
        item.appendChild(el("span", "mark", "answer"));
      }
      if (picked && letter === picked) {
        if (letter !== truth) item.classList.add("picked-wrong");
        item.appendChild(el("span", "mark", "predicted"));
      }
      list.appendChild(item);
    });
    return list;
  }

  function optionText(s, letter) {
    var hit = s.options.filter(function (o) { return letter && o[0].toUpperCase() === letter.toUpperCase(); });
    return hit.length ? hit[0][1] : "";
  }

  function line(cls, label, text) {
    var p = el("p", cls);
    p.appendChild(el("span", "label", label));
    p.appendChild(document.createTextNode(text));
    return p;
  }

  function card(s) {
    var article = el("article", "sample verdict-" + s.verdict + (s.issues.length ? " has-issues" : ""));
    article.dataset.row = s.row;
    article.dataset.id = s.id;
    var header = el("header");
    header.appendChild(el("span", "rowno", "#" + s.row));
    header.appendChild(el("code", "sid", s.id));
    if (s.domain) header.appendChild(el("span", "tag domain", s.domain));
    if (s.category) header.appendChild(el("span", "tag category", s.category));
    if (s.qtype) header.appendChild(el("span", "tag qtype", s.qtype));
    if (DATA.hasPredictions) {
      var label = { correct: "correct", wrong: "wrong", none: "no prediction", unscored: "no ground truth" };
      header.appendChild(el("span", "badge " + s.verdict, label[s.verdict] || s.verdict));
    }
    if (s.issues.length) header.appendChild(el("span", "badge issue", s.issues.length + " issue(s)"));
    article.appendChild(header);
    if (s.frames.length) article.appendChild(frameStrip(s));
    var qa = el("div", "qa");
    if (s.question) qa.appendChild(el("p", "question", s.question));
    if (s.options.length) qa.appendChild(optionList(s));
    if (s.answer) {
      var truthText = optionText(s, s.answer.replace(/[^A-Za-z]/g, ""));
      qa.appendChild(line("answer-line", "ground truth", s.answer + (truthText ? " · " + truthText : "")));
    }
    if (s.pred) {
      var predText = optionText(s, s.pred.prediction);
      var pred = line("pred-line", "prediction", (s.pred.prediction || "(none)") + (predText ? " · " + predText : ""));
      if (s.pred.status) pred.appendChild(el("span", "tag", s.pred.status));
      qa.appendChild(pred);
      if (s.why) qa.appendChild(line("why", "why wrong:", s.why));
      if (s.pred.reason) qa.appendChild(line("reason", "model's reason:", s.pred.reason));
      if (s.pred.raw) {
        var details = el("details", "raw-response");
        details.appendChild(el("summary", null, "raw response"));
        details.appendChild(el("pre", null, s.pred.raw));
        qa.appendChild(details);
      }
    } else if (DATA.hasPredictions) {
      qa.appendChild(line("why", "", s.why));
    }
    article.appendChild(qa);
    if (s.issues.length) {
      var issues = el("ul", "row-issues");
      s.issues.forEach(function (i) {
        var item = el("li", i.severity);
        if (i.field) { item.appendChild(el("code", null, i.field)); item.appendChild(document.createTextNode(": ")); }
        item.appendChild(document.createTextNode(i.message));
        issues.appendChild(item);
      });
      article.appendChild(issues);
    }
    if (s.raw) {
      var raw = el("details", "raw-row");
      raw.open = true;
      raw.appendChild(el("summary", null, "row as written"));
      raw.appendChild(el("pre", null, s.raw));
      article.appendChild(raw);
    }
    return article;
  }

  function render() {
    var visible = samples.filter(matches);
    var size = state.size > 0 ? state.size : Math.max(1, visible.length);
    var pages = Math.max(1, Math.ceil(visible.length / size));
    state.page = Math.min(Math.max(1, state.page), pages);
    var start = (state.page - 1) * size;
    var shown = visible.slice(start, start + size);
    var fragment = document.createDocumentFragment();
    shown.forEach(function (s) { fragment.appendChild(card(s)); });
    if (!shown.length) fragment.appendChild(el("p", "empty", "No sample matches these filters."));
    container.replaceChildren(fragment);
    var info = visible.length
      ? "samples " + (start + 1) + "–" + (start + shown.length) + " of " + visible.length
        + (visible.length < samples.length ? " (filtered from " + samples.length + ")" : "")
        + " · page " + state.page + " of " + pages
      : "0 of " + samples.length + " samples";
    document.querySelectorAll(".page-info").forEach(function (n) { n.textContent = info; });
    document.querySelectorAll(".pager .prev").forEach(function (b) { b.disabled = state.page <= 1; });
    document.querySelectorAll(".pager .next").forEach(function (b) { b.disabled = state.page >= pages; });
    document.body.dataset.visible = visible.length;
  }

  // The filter state lives in the URL fragment, so a view can be bookmarked or shared as a link.
  function writeHash() {
    var parts = [];
    ["domain", "category", "verdict", "issues", "q"].forEach(function (k) {
      if (state[k]) parts.push(k + "=" + encodeURIComponent(state[k]));
    });
    if (state.page > 1) parts.push("page=" + state.page);
    if (state.size !== DATA.pageSize) parts.push("size=" + state.size);
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (hash !== location.hash) history.replaceState(null, "", hash || location.pathname + location.search);
  }

  function readHash() {
    var params = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var at = kv.indexOf("=");
      if (at > 0) {
        try { params[kv.slice(0, at)] = decodeURIComponent(kv.slice(at + 1)); } catch (e) { /* ignore a bad link */ }
      }
    });
    ["domain", "category", "verdict", "issues", "q"].forEach(function (k) { state[k] = params[k] || ""; });
    state.page = parseInt(params.page, 10) || 1;
    var size = parseInt(params.size, 10);
    state.size = isNaN(size) ? DATA.pageSize : size;
    ["domain", "category", "verdict", "issues", "q"].forEach(function (k) { filters[k].value = state[k]; });
    filters.size.value = String(state.size);
    if (filters.size.value !== String(state.size)) {  // a page size the menu lacks: add it
      var option = el("option", null, String(state.size));
      option.value = String(state.size);
      filters.size.appendChild(option);
      filters.size.value = option.value;
    }
  }

  function onFilter() {
    ["domain", "category", "verdict", "issues", "q"].forEach(function (k) { state[k] = filters[k].value; });
    state.size = parseInt(filters.size.value, 10);
    state.page = 1;
    writeHash();
    render();
  }

  function turn(delta) {
    return function () {
      state.page += delta;
      writeHash();
      render();
      byId("browser").scrollIntoView();
    };
  }

  if (!DATA.hasPredictions) document.body.classList.add("no-predictions");
  fillSelect(filters.domain, "domain");
  fillSelect(filters.category, "category");
  readHash();
  Object.keys(filters).forEach(function (k) {
    filters[k].addEventListener(k === "q" ? "input" : "change", onFilter);
  });
  byId("filters").addEventListener("submit", function (e) { e.preventDefault(); });
  document.querySelectorAll(".pager .prev").forEach(function (b) { b.addEventListener("click", turn(-1)); });
  document.querySelectorAll(".pager .next").forEach(function (b) { b.addEventListener("click", turn(1)); });
  var showIssues = byId("show-issues");
  if (showIssues) {
    showIssues.addEventListener("click", function () {
      filters.issues.value = "yes";
      onFilter();
      byId("browser").scrollIntoView();
    });
  }
  window.addEventListener("hashchange", function () { readHash(); render(); });
  render();
  document.body.dataset.readyMs = String(Math.round(performance.now()));  // read by benchmarks/inspect_report.py
  document.body.dataset.ready = "1";
})();
