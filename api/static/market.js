// 智能问答 and 供需匹配 over POST /ask, /match and /match/batch.
import { $, KIND_NAMES, api, docLink, el, setSummary, where } from "./common.js";

// ---- 智能问答 ---------------------------------------------------------------------------
// Only our own markers become links: ASCII [n] with a passage n. A source's reference marks ("[4]" in a paper)
// arrive as ［4］ from the server and stay text, as does any [n] without a passage.
export function renderAnswer(res, question) {
  const answer = $("ask-answer");
  answer.replaceChildren();
  const text = res.answer || "";
  const n = res.citations.length;
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const k = Number(m[1]);
    if (k < 1 || k > n) continue;
    answer.append(text.slice(last, m.index));
    const a = el("a", { href: `#cite-${k}` }, `[${k}]`);
    a.addEventListener("click", (e) => { e.preventDefault(); openCitation(k); });
    answer.append(el("sup", {}, a));
    last = m.index + m[0].length;
  }
  answer.append(text.slice(last));
  $("ask-notes").replaceChildren(...(res.notes || []).map((note) => el("li", {}, note)));
  $("ask-citations").replaceChildren(...res.citations.map((c, i) => citation(c, i + 1, question)));
  if (!res.found && n) openCitation(1, false); // the best passage, its matching words marked
}

function citation(c, n, question) {
  return el("li", { id: `cite-${n}` },
    el("details", {},
      el("summary", {}, el("span", { class: "num" }, `[${n}]`), `${c.title} `,
        el("span", { class: "meta" }, where(c.section, c.page))),
      c.highlighted ? el("p", { class: "text", html: c.highlighted }) : el("p", { class: "text" }, c.text || ""),
      docLink(c.doc_id, c.chunk_id, question)));
}

function openCitation(n, scroll = true) {
  const item = $(`cite-${n}`);
  if (!item) return;
  item.querySelector("details").open = true;
  if (scroll) item.scrollIntoView({ behavior: "smooth", block: "nearest" });
}

$("ask-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  setSummary("ask-summary", "思考中…");
  const t0 = performance.now();
  try {
    const res = await api("/ask", { method: "POST", body: { question } });
    renderAnswer(res, question);
    const n = res.citations.length;
    const ms = Math.round(performance.now() - t0);
    let note;
    if (res.found) note = `引用 ${n} 段原文，用时 ${ms} 毫秒。点击编号查看原文。`;
    else if (n) note = `未找到确切答案，列出最接近的 ${n} 段原文（第 1 段已展开，匹配的词已标出）。`;
    else note = "知识库中没有与这个问题相关的内容。";
    setSummary("ask-summary", [note, ...(res.warnings || [])].join(" "), res.found ? "" : "empty");
  } catch (err) {
    setSummary("ask-summary", err.message, "error");
    $("ask-answer").replaceChildren();
    $("ask-notes").replaceChildren();
    $("ask-citations").replaceChildren();
  }
});

// ---- 供需匹配 ---------------------------------------------------------------------------
let needsLoaded = false;
export function forgetNeeds() { needsLoaded = false; } // a need was added or edited: reload the list when shown
export async function loadNeeds() {
  if (needsLoaded) return;
  needsLoaded = true;
  const select = $("need");
  const options = [el("option", { value: "" }, "（不选，按下面的描述匹配）")];
  try {
    let cursor = null;
    do {
      const page = await api(`/documents?kind=need&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      for (const d of page.items) options.push(el("option", { value: d.doc_id }, `${d.doc_id} ${d.title}`));
      cursor = page.next_cursor;
    } while (cursor);
  } catch (err) {
    needsLoaded = false;
    setSummary("match-summary", err.message, "error");
  }
  select.replaceChildren(...options);
}

const REASON_ICONS = { terms: "术语", results: "代表成果", problems: "解决的问题", field: "领域", trl: "成熟度", region: "地区", score: "得分" };
const STATUSES = ["推荐", "已联系", "洽谈中", "已签约", "不合适"];
const RATING_CLASS = { 高: "high", 中: "mid", 低: "low" };

function matchCard(m, n, needId, pair) {
  const reasons = m.reasons || [];
  const terms = reasons.find((r) => r.type === "terms");
  const score = reasons.find((r) => r.type === "score");
  const shown = reasons.filter((r) => r.type !== "score");
  return el("li", { class: "hit", "data-doc": m.doc_id },
    el("h3", {}, `${n}. ${m.title}`),
    el("div", { class: "meta" },
      el("span", { class: "badge" }, KIND_NAMES[m.kind] || m.kind),
      m.rating ? el("span", { class: `rating rating-${RATING_CLASS[m.rating] || "low"}` }, `匹配度 ${m.rating}`) : null,
      el("span", {}, m.doc_id),
      m.org ? el("span", { class: "org" }, `单位：${m.org}`) : null,
      m.field ? el("span", {}, m.field) : null,
      m.trl !== null && m.trl !== undefined ? el("span", {}, `TRL ${m.trl}`) : null,
      m.region ? el("span", {}, m.region) : null,
      m.strong === false ? el("span", { class: "weak" }, "把握不大") : null,
      docLink(m.doc_id, null, null)),
    m.source ? el("p", { class: "source" }, `来源：${m.source}`) : null,
    el("ul", { class: "reasons" }, ...shown.map((r) =>
      el("li", { class: `reason reason-${r.type}` }, el("b", {}, `${REASON_ICONS[r.type] || r.type}：`), r.text))),
    needId ? pairControl(needId, m.doc_id, pair) : null,
    el("details", { class: "score-details" }, el("summary", {}, "详情"),
      score ? el("p", { class: "formula" }, score.text) : null,
      el("p", { class: "text", html: (terms && terms.highlighted) || "" })));
}

// 对接记录: the pair's status and note, saved with POST /pairs (the API key's name is kept with each change)
function pairControl(needId, candId, pair) {
  const select = el("select", { class: "pair-status", "aria-label": "对接状态" },
    el("option", { value: "" }, "（未对接）"), ...STATUSES.map((s) => el("option", { value: s }, s)));
  select.value = pair ? pair.status : "";
  const note = el("input", { class: "pair-note", type: "text", maxlength: "2000", placeholder: "备注（可选）",
                             value: pair ? pair.note : "" });
  const said = el("span", { class: "pair-said", "aria-live": "polite" },
                  pair ? `${pair.by || ""} ${new Date(pair.at * 1000).toLocaleString("zh-CN")}` : "");
  const save = el("button", { type: "button", class: "pair-save" }, "保存状态");
  save.addEventListener("click", async () => {
    if (!select.value) { said.textContent = "请先选择状态"; return; }
    try {
      const res = await api("/pairs", { method: "POST",
        body: { need_id: needId, cand_id: candId, status: select.value, note: note.value.trim() } });
      said.textContent = `已保存：${res.status}（${res.by}）`;
    } catch (err) {
      said.textContent = err.message;
      said.classList.add("error");
    }
  });
  return el("div", { class: "pair" }, el("label", {}, "对接状态 ", select), note, save, said);
}

async function pairsOf(needId) {
  if (!needId) return {};
  try {
    const res = await api(`/pairs?need_id=${encodeURIComponent(needId)}`);
    return Object.fromEntries(res.pairs.map((p) => [p.cand_id, p]));
  } catch (_) {
    return {}; // no key, or a key that may not see pair statuses: the suggestions still show
  }
}

const TARGET_NAMES = { result: "技术成果", expert: "专家团队", all: "成果和专家团队" };

$("match-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const needId = $("need").value;
  const text = $("problem").value.trim();
  const to = $("match-to").value;
  if (!needId && !text) { setSummary("match-summary", "请选择一项需求或描述您的问题。", "error"); return; }
  setSummary("match-summary", "匹配中…");
  try {
    const body = needId ? { need_id: needId, top_k: 5, to } : { text, top_k: 5, to };
    const [res, pairs] = await Promise.all([api("/match", { method: "POST", body }), pairsOf(needId)]);
    const items = res.matches;
    const what = res.query.title ? `「${res.query.title}」` : "您描述的问题";
    let note;
    if (!items.length) note = `暂时没有合适的${TARGET_NAMES[to]}。`;
    else if (res.strong_match !== false) note = `为${what}找到 ${items.length} 项可能合适的${TARGET_NAMES[to]}`;
    else note = `暂无把握较大的匹配：下面 ${items.length} 项与${what}最接近，但都不太像能解决它，请核实或换个说法描述。`;
    setSummary("match-summary", note, items.length && res.strong_match !== false ? "" : "empty");
    $("match-results").replaceChildren(...items.map((m, i) => matchCard(m, i + 1, needId, pairs[m.doc_id])));
  } catch (err) {
    setSummary("match-summary", err.message, "error");
    $("match-results").replaceChildren();
  }
});

$("batch-link").addEventListener("click", async (ev) => {
  ev.preventDefault();
  const xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  try {
    const blob = await api("/match/batch", { method: "POST", body: {}, accept: xlsx });
    const a = el("a", { href: URL.createObjectURL(blob), download: "供需匹配.xlsx" });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  } catch (err) {
    setSummary("match-summary", err.message, "error");
  }
});
