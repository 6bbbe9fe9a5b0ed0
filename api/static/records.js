// 录入记录: a need or result typed in (POST /records) or edited (PUT /records/{id}). The form is drawn from
// GET /record-form, so a new kind of record needs no change here; the server's 422 names each wrong field.
import { $, api, el, setSummary } from "./common.js";
import { forgetNeeds } from "./market.js";

let editing = null; // the id of the record being edited; null for a new one
let drawn = false;

function input(f, value) {
  const attrs = { id: `rf-${f.name}`, name: f.name, maxlength: String(f.max_len) };
  if (f.widget === "textarea") return el("textarea", { ...attrs, rows: "6" }, value);
  if (f.choices.length) {
    const node = el("select", attrs, el("option", { value: "" }, "（请选择）"),
      ...f.choices.map((c) => el("option", { value: c }, c)));
    node.value = value;
    return node;
  }
  if (f.widget === "trl") return el("input", { ...attrs, type: "number", min: "1", max: "9", value });
  return el("input", { ...attrs, type: "text", value });
}

function field(f, values) {
  const value = values[f.name] === undefined || values[f.name] === null ? "" : String(values[f.name]);
  return el("label", { class: "form-field" }, `${f.label}${f.required ? "（必填）" : ""}`, input(f, value),
    f.hint ? el("small", {}, f.hint) : null, el("span", { class: "field-error", id: `rf-err-${f.name}` }));
}

async function drawForm(values = {}) {
  const kind = $("record-kind").value;
  try {
    const form = await api(`/record-form?kind=${encodeURIComponent(kind)}`);
    const shown = form.fields.filter((f) => !(editing && f.name === "id")); // an edit keeps its id
    $("record-fields").replaceChildren(...shown.map((f) => field(f, values)));
    drawn = true;
  } catch (err) {
    setSummary("record-summary", err.message, "error");
  }
}

export function loadRecordForm() {
  if (!drawn) drawForm();
}

$("record-kind").addEventListener("change", () => { editing = null; drawForm(); });
$("record-new").addEventListener("click", () => {
  editing = null;
  $("record-id").value = "";
  setSummary("record-summary", "");
  drawForm();
});

$("record-load").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("record-id").value.trim();
  if (!id) return;
  try {
    const rec = await api(`/records/${encodeURIComponent(id)}`);
    editing = rec.doc_id;
    $("record-kind").value = rec.kind;
    const visibility = rec.visibility === "internal" ? "内部" : "公开";
    await drawForm({ ...rec.meta, title: rec.title, description: rec.description, visibility });
    setSummary("record-summary", `正在修改 ${rec.doc_id}；保存后旧版本会保留。`);
  } catch (err) {
    setSummary("record-summary", err.message, "error");
  }
});

$("record-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { kind: $("record-kind").value };
  for (const node of $("record-fields").querySelectorAll("[name]")) body[node.name] = node.value.trim();
  for (const node of $("record-fields").querySelectorAll(".field-error")) node.textContent = "";
  setSummary("record-summary", "保存中…");
  try {
    const res = editing
      ? await api(`/records/${encodeURIComponent(editing)}`, { method: "PUT", body })
      : await api("/records", { method: "POST", body });
    forgetNeeds();
    editing = res.doc_id;
    const kept = res.version ? `，旧版本已保留为第 ${res.version} 版` : "";
    setSummary("record-summary", res.changed ? `已保存 ${res.doc_id}${kept}。` : `没有改动：${res.doc_id}。`);
  } catch (err) {
    for (const [name, msg] of Object.entries(err.fields || {})) {
      const node = $(`rf-err-${name}`);
      if (node) node.textContent = msg;
    }
    setSummary("record-summary", err.message, "error");
  }
});
