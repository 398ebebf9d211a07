// The review page: grade one question across the class, one student at a time, by keyboard.
// Every student string is set with textContent (never innerHTML): answers stay plain text.
"use strict";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const state = { questions: [], question: null, students: [], index: 0, view: null, checked: {}, comments: [],
                picking: false, shown: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function button(text, onClick) {
  const node = el("button", text);
  node.addEventListener("click", onClick);
  return node;
}

async function api(url, body) {
  const options = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf } };
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  return { ok: response.ok, status: response.status, data };
}

function grader() { return $("grader-name").value.trim(); }
function questionUrl(suffix = "") { return `/api/questions/${encodeURIComponent(state.question.id)}${suffix}`; }
function say(text) { $("status").textContent = text; }

function named() {
  if (grader()) return true;
  say("name yourself first (TA, top left)"); $("grader-name").focus();
  return false;
}

// -- the question and its students ---------------------------------------------------------------

async function loadQuestions() {
  const { data } = await api("/api/questions");
  const selected = $("question").value;
  state.questions = data;
  $("question").replaceChildren(...data.filter((q) => q.manual.length).map((q) => {
    const option = el("option", `${q.id}: ${q.title}` + (q.assigned_to ? ` (${q.assigned_to})` : ""));
    option.value = q.id; return option; }));
  if (selected) $("question").value = selected;
  state.question = state.questions.find((q) => q.id === $("question").value);
  showProgress();
}

function showProgress() {
  const progress = state.question.progress;
  $("progress").textContent = `${progress.graded}/${progress.total} graded`;
}

async function loadStudents() {
  state.question = state.questions.find((q) => q.id === $("question").value);
  const params = new URLSearchParams({ order: $("order").value, grader: grader(), show: $("show").value });
  const { data } = await api(`${questionUrl("/students")}?${params}`);
  state.students = data; state.index = 0;
  showProgress();
  renderItemChoices();
  await loadComments();
  await showStudent();
}

async function showStudent() {
  const row = state.students[state.index];
  $("position").textContent = state.students.length ? `student ${state.index + 1} of ${state.students.length}` : "no students";
  if (!row) { state.view = null; $("student").textContent = ""; return; }
  const shown = ++state.shown;
  $("student").setAttribute("aria-busy", "true");  // until this student is drawn (screen readers, tests)
  const { data } = await api(questionUrl(`/students/${encodeURIComponent(row.student_id)}`));
  if (shown !== state.shown) return;  // j or k pressed again meanwhile: only the latest student is shown
  state.view = data;
  $("student").textContent = `${data.student_id} ${data.name}` + (data.status !== "graded" ? ` (${data.status})` : "")
    + (row.assigned_to ? ` · assigned to ${row.assigned_to}` : "");
  $("answer").textContent = data.answer || "(no answer in report.md)";
  $("claims").replaceChildren(...data.claims.map((c) => {
    const box = el("div", undefined, `claim ${c.css}`);
    box.append(el("span", c.verdict, "verdict"), " ", el("q", c.quote), ": ", el("span", c.claim),
               el("div", c.evidence, "evidence"));
    return box; }));
  $("automatic").tBodies[0].replaceChildren(...data.automatic.map((c) => {
    const tr = el("tr");
    tr.append(el("td", c.description || c.id), el("td", c.value === null ? "—" : Number(c.value).toPrecision(3) +
              (c.interval ? ` (${Number(c.interval[0]).toPrecision(3)}–${Number(c.interval[1]).toPrecision(3)})` : "")),
              el("td", `${c.score} / ${c.max_score}` + (c.borderline ? " borderline" : "")), el("td", c.threshold));
    return tr; }));
  $("figures").replaceChildren(...data.figures.map((f) => {
    const figure = el("figure"); const img = el("img"); img.src = f.url; img.alt = f.caption;
    figure.append(img, el("figcaption", f.caption)); return figure; }));
  renderManual();
  renderRegrades();
  $("student").setAttribute("aria-busy", "false");
  if ($("history-box").open) await loadHistory();
}

// -- scoring by rubric items ----------------------------------------------------------------------

function renderManual() {
  const manual = state.view.manual;
  state.checked = {};
  $("manual").replaceChildren(...manual.map((criterion) => {
    const box = el("fieldset"); box.append(el("legend", `${criterion.description || criterion.id} (${criterion.points} pt)`));
    const saved = criterion.saved;
    state.checked[criterion.id] = new Set(saved ? saved.items : []);
    for (const item of criterion.items) {
      const label = el("label", "", "item" + (item.points < 0 ? " negative" : ""));
      const input = el("input"); input.type = "checkbox"; input.dataset.criterion = criterion.id; input.dataset.item = item.id;
      input.checked = state.checked[criterion.id].has(item.id);
      input.addEventListener("change", () => toggle(criterion.id, item.id, input.checked));
      label.append(input, " ", el("kbd", item.key), ` ${item.text} (${item.points > 0 ? "+" : ""}${item.points})`);
      box.append(label);
    }
    box.append(el("div", saved ? `saved: ${saved.score} by ${saved.grader} (version ${saved.version})` : "not scored yet"));
    return box; }));
  const first = manual[0] && manual[0].saved;
  $("comment").value = first ? first.comment : "";
  $("adjustment").value = first ? first.adjustment : 0;
  $("regrade-criterion").replaceChildren(...manual.map((c) => { const o = el("option", c.id); o.value = c.id; return o; }));
  say("");
}

function toggle(criterionId, itemId, on) {
  const set = state.checked[criterionId];
  if (on) set.add(itemId); else set.delete(itemId);
  const box = document.querySelector(`input[data-criterion="${criterionId}"][data-item="${itemId}"]`);
  if (box) box.checked = on;
}

async function save() {
  if (!state.view || !named()) return;
  // What is on the page now is what gets saved, even if the TA moves on before the server answers.
  const view = state.view;
  const bodies = view.manual.map((criterion) => {
    const body = { student_id: view.student_id, criterion_id: criterion.id, grader: grader(),
                   items: [...state.checked[criterion.id]], adjustment: Number($("adjustment").value) || 0,
                   comment: $("comment").value, expected_version: criterion.saved ? criterion.saved.version : 0 };
    if (!criterion.items.length) body.score = Number($("adjustment").value) || 0;
    return [criterion, body]; });
  const here = () => state.view === view;
  for (const [criterion, body] of bodies) {
    const { ok, status, data } = await api("/api/scores", body);
    if (status === 409) {
      criterion.saved = data.current;
      if (here()) $("status").replaceChildren(el("div", `Not saved: ${data.error}`, "conflict"));
      else say(`${view.student_id} not saved: ${data.error}`);
      return;
    }
    if (!ok) { say(`${here() ? "" : view.student_id + " "}Not saved: ${data.error}`); return; }
    criterion.saved = data;
  }
  if (here()) renderManual();  // each criterion's line now names this save and its version
  await loadQuestions();
  if (here() && $("history-box").open) await loadHistory();
  say(here() ? "saved" : `${view.student_id} saved`);  // last, once the progress shown counts this save
}

function move(step) {
  const next = state.index + step;
  if (next >= 0 && next < state.students.length) { state.index = next; showStudent(); }
}

// -- reusable comments ----------------------------------------------------------------------------

async function loadComments() {
  const { data } = await api(questionUrl("/comments"));
  state.comments = data;
  $("reusable").replaceChildren(...data.map((c, index) => {
    const li = el("li");
    li.append(button(index < 9 ? `${index + 1}: ${c.text}` : c.text, () => useComment(index)));
    return li; }));
}

function useComment(index) {
  const comment = state.comments[index];
  if (!comment) return;
  const box = $("comment");
  box.value = box.value.trim() ? `${box.value.trimEnd()}\n${comment.text}` : comment.text;
  say(`comment ${index + 1} added`);
}

async function keepComment() {
  const text = $("comment").value.trim();
  if (!text || !named()) return;
  const { ok, data } = await api(questionUrl("/comments"), { text, grader: grader() });
  say(ok ? "comment kept for reuse" : `Not kept: ${data.error}`);
  await loadComments();
}

// -- regrade requests -----------------------------------------------------------------------------

function renderRegrades() {
  const requests = state.view.manual.flatMap((c) => c.regrades);
  $("regrades").replaceChildren(...requests.map((r) => {
    const box = el("div", "", "request");
    box.append(el("p", `regrade request on ${r.criterion_id} (${r.status}): ${r.text}`));
    if (r.status === "resolved") box.append(el("p", `${r.resolved_by}: ${r.resolution}`));
    else {
      const answer = el("textarea"); answer.className = "resolution"; answer.placeholder = "your answer to the student";
      box.append(answer, button("Resolve", () => resolve(r.id, answer.value)));
    }
    return box; }));
}

async function refreshView() {
  const { data } = await api(questionUrl(`/students/${encodeURIComponent(state.view.student_id)}`));
  state.view = data; renderManual(); renderRegrades();
}

async function resolve(requestId, comment) {
  if (!named()) return;
  const { ok, data } = await api(`/api/regrades/${requestId}/resolve`, { grader: grader(), comment });
  if (!ok) { say(`Not resolved: ${data.error}`); return; }
  await refreshView(); say("regrade request resolved");
}

async function recordRequest() {
  if (!state.view) return;
  const body = { student_id: state.view.student_id, criterion_id: $("regrade-criterion").value, text: $("regrade-text").value };
  const { ok, data } = await api("/api/regrades", body);
  if (!ok) { say(`Not recorded: ${data.error}`); return; }
  $("regrade-text").value = "";
  await refreshView(); say("regrade request recorded");
}

// -- history --------------------------------------------------------------------------------------

function describe(value) {
  if (!value) return "—";
  return `${value.score}` + (value.items.length ? ` [${value.items.join(", ")}]` : "") + (value.comment ? ` “${value.comment}”` : "");
}

async function loadHistory() {
  if (!state.view) return;
  const rows = [];
  for (const criterion of state.view.manual) {
    const { data } = await api(`/api/history/${encodeURIComponent(state.view.student_id)}/${encodeURIComponent(criterion.id)}`);
    for (const entry of data) {
      const tr = el("tr", undefined, entry.applied ? "" : "refused");
      tr.append(el("td", entry.changed_at.replace("T", " ").slice(0, 19)), el("td", criterion.id), el("td", entry.grader),
                el("td", describe(entry.old)), el("td", describe(entry.new) + (entry.applied ? "" : " (refused: conflict)")));
      rows.push(tr);
    }
  }
  const table = el("table"); const head = el("tr");
  head.append(...["when (UTC)", "criterion", "TA", "old", "new"].map((h) => el("th", h)));
  table.append(head, ...rows);
  $("history").replaceChildren(rows.length ? table : el("p", "no changes yet"));
}

async function toggleHistory() {
  $("history-box").open = !$("history-box").open;
  if ($("history-box").open) await loadHistory();
}

// -- assignments ----------------------------------------------------------------------------------

async function assignQuestion() {
  const ta = $("assign-ta").value.trim();
  if (!ta || !named()) return;
  const { ok, data } = await api("/api/assignments", { ta, grader: grader(), question_id: state.question.id });
  await loadQuestions();
  say(ok ? `${state.question.id} assigned to ${ta}` : `Not assigned: ${data.error}`);
}

async function splitStudents() {
  const tas = $("split-tas").value.split(",").map((t) => t.trim()).filter(Boolean);
  if (!tas.length || !named()) return;
  for (const [index, ta] of tas.entries()) {
    const student_ids = state.students.filter((_, i) => i % tas.length === index).map((s) => s.student_id);
    if (!student_ids.length) continue;
    const { ok, data } = await api("/api/assignments", { ta, grader: grader(), student_ids });
    if (!ok) { say(`Not assigned: ${data.error}`); return; }
  }
  const count = state.students.length;
  await loadStudents();
  say(`${count} students split among ${tas.join(", ")}`);  // after the reload, which clears the status
}

// -- rubric item points ---------------------------------------------------------------------------

function renderItemChoices() {
  const options = state.question.manual.flatMap((c) => c.items.map((item) => {
    const option = el("option", `${c.id} · ${item.key} ${item.text} (${item.points})`);
    option.value = JSON.stringify([c.id, item.id]); return option; }));
  $("points-item").replaceChildren(...options);
}

async function applyPoints() {
  if (!$("points-item").value || !named()) return;
  const [criterion_id, item_id] = JSON.parse($("points-item").value);
  const { ok, data } = await api("/api/items", { criterion_id, item_id, points: Number($("points-value").value), grader: grader() });
  if (!ok) { say(`Not changed: ${data.error}`); return; }
  await loadQuestions(); renderItemChoices(); await refreshView();
  say(`${item_id} is now ${data.points} points: ${data.rescored} student(s) scored again`);
}

// -- keys -----------------------------------------------------------------------------------------

function onKey(event) {
  const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(event.target.tagName) && event.target.type !== "checkbox";
  if (typing) {
    if (event.key === "Escape") event.target.blur();
    if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); save(); }
    return;
  }
  if (!state.view || event.ctrlKey || event.metaKey || event.altKey) return;
  if (state.picking) {
    state.picking = false;
    if (/^[1-9]$/.test(event.key)) { event.preventDefault(); useComment(Number(event.key) - 1); return; }
    say(""); if (event.key === "Escape") return;
  }
  for (const criterion of state.view.manual) {
    const item = criterion.items.find((i) => i.key === event.key);
    if (item) { event.preventDefault(); toggle(criterion.id, item.id, !state.checked[criterion.id].has(item.id)); return; }
  }
  const actions = {
    j: () => move(1), k: () => move(-1), s: save, h: toggleHistory, c: () => $("comment").focus(),
    r: () => { state.picking = true; say("reusable comment: type its number (Esc: none)"); },
  };
  if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
}

document.addEventListener("keydown", onKey);
$("grader-name").value = document.querySelector('meta[name="grader"]').content || localStorage.getItem("grader") || "";
$("grader-name").addEventListener("change", () => {
  localStorage.setItem("grader", grader());
  if ($("order").value === "shuffle" || $("show").value === "mine") loadStudents();  // both depend on who grades
});
$("question").addEventListener("change", loadStudents);
for (const id of ["order", "show"]) $(id).addEventListener("change", loadStudents);
$("save").addEventListener("click", save);
$("keep-comment").addEventListener("click", keepComment);
$("regrade-add").addEventListener("click", recordRequest);
$("assign-question").addEventListener("click", assignQuestion);
$("split-students").addEventListener("click", splitStudents);
$("points-apply").addEventListener("click", applyPoints);
$("history-box").addEventListener("toggle", () => { if ($("history-box").open) loadHistory(); });
loadQuestions().then(loadStudents);
