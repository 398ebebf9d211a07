// The review page: grade one question across the class, one student at a time, by keyboard.
// Every student string is set with textContent (never innerHTML): answers stay plain text.
"use strict";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const state = { questions: [], question: null, students: [], index: 0, view: null, checked: {} };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
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

async function loadQuestions() {
  const { data } = await api("/api/questions");
  state.questions = data;
  const select = $("question");
  select.replaceChildren(...data.filter((q) => q.manual.length).map((q) => {
    const option = el("option", `${q.id}: ${q.title}`); option.value = q.id; return option; }));
  await loadStudents();
}

async function loadStudents() {
  state.question = state.questions.find((q) => q.id === $("question").value);
  const params = new URLSearchParams({ order: $("order").value, grader: grader(), show: $("show").value });
  const { data } = await api(`/api/questions/${encodeURIComponent(state.question.id)}/students?${params}`);
  state.students = data; state.index = 0;
  const progress = state.question.progress;
  $("progress").textContent = `${progress.graded}/${progress.total} graded`;
  await showStudent();
}

async function showStudent() {
  const row = state.students[state.index];
  $("position").textContent = state.students.length ? `student ${state.index + 1} of ${state.students.length}` : "no students";
  if (!row) { state.view = null; return; }
  const { data } = await api(`/api/questions/${encodeURIComponent(state.question.id)}/students/${encodeURIComponent(row.student_id)}`);
  state.view = data;
  $("student").textContent = `${data.student_id} ${data.name}` + (data.status !== "graded" ? ` (${data.status})` : "");
  $("answer").textContent = data.answer || "(no answer in report.md)";
  $("automatic").tBodies[0].replaceChildren(...data.automatic.map((c) => {
    const tr = el("tr");
    tr.append(el("td", c.description || c.id), el("td", c.value === null ? "—" : Number(c.value).toPrecision(3)),
              el("td", `${c.score} / ${c.max_score}`), el("td", c.threshold));
    return tr; }));
  $("figures").replaceChildren(...data.figures.map((f) => {
    const figure = el("figure"); const img = el("img"); img.src = f.url; img.alt = f.caption;
    figure.append(img, el("figcaption", f.caption)); return figure; }));
  renderManual();
}

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
  const requests = manual.flatMap((c) => c.regrades);
  $("regrades").replaceChildren(...requests.map((r) => el("p", `regrade request (${r.status}): ${r.text}` +
    (r.resolution ? ` — ${r.resolved_by}: ${r.resolution}` : ""))));
  $("status").textContent = "";
}

function toggle(criterionId, itemId, on) {
  const set = state.checked[criterionId];
  if (on) set.add(itemId); else set.delete(itemId);
  const box = document.querySelector(`input[data-criterion="${criterionId}"][data-item="${itemId}"]`);
  if (box) box.checked = on;
}

async function save() {
  if (!state.view) return;
  if (!grader()) { $("status").textContent = "name yourself first (TA, top left)"; $("grader-name").focus(); return; }
  for (const criterion of state.view.manual) {
    const body = { student_id: state.view.student_id, criterion_id: criterion.id, grader: grader(),
                   items: [...state.checked[criterion.id]], adjustment: Number($("adjustment").value) || 0,
                   comment: $("comment").value, expected_version: criterion.saved ? criterion.saved.version : 0 };
    if (!criterion.items.length) body.score = Number($("adjustment").value) || 0;
    const { ok, status, data } = await api("/api/scores", body);
    if (status === 409) {
      $("status").replaceChildren(el("div", `Not saved: ${data.error}`, "conflict"));
      criterion.saved = data.current; return;
    }
    if (!ok) { $("status").textContent = `Not saved: ${data.error}`; return; }
    criterion.saved = data;
  }
  $("status").textContent = "saved";
  const { data } = await api("/api/questions");
  state.questions = data; state.question = data.find((q) => q.id === state.question.id);
  $("progress").textContent = `${state.question.progress.graded}/${state.question.progress.total} graded`;
}

function move(step) {
  const next = state.index + step;
  if (next >= 0 && next < state.students.length) { state.index = next; showStudent(); }
}

document.addEventListener("keydown", (event) => {
  const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(event.target.tagName) && event.target.type !== "checkbox";
  if (typing) {
    if (event.key === "Escape") event.target.blur();
    if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); save(); }
    return;
  }
  if (!state.view || event.ctrlKey || event.metaKey || event.altKey) return;
  for (const criterion of state.view.manual) {
    const item = criterion.items.find((i) => i.key === event.key);
    if (item) { event.preventDefault(); toggle(criterion.id, item.id, !state.checked[criterion.id].has(item.id)); return; }
  }
  if (event.key === "j") move(1);
  else if (event.key === "k") move(-1);
  else if (event.key === "s") save();
  else if (event.key === "c") { event.preventDefault(); $("comment").focus(); }
});

$("grader-name").value = document.querySelector('meta[name="grader"]').content || localStorage.getItem("grader") || "";
$("grader-name").addEventListener("change", () => localStorage.setItem("grader", grader()));
for (const id of ["question", "order", "show"]) $(id).addEventListener("change", loadStudents);
$("save").addEventListener("click", save);
loadQuestions();
