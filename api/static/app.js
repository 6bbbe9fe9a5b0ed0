// cbm-kb web page: three tabs over the JSON API. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const KIND_NAMES = { plan: "规划", paper: "论文", project: "项目", need: "技术需求", result: "技术成果" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "html") node.innerHTML = v; // only for server-escaped highlight HTML
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// ---- API -------------------------------------------------------------------------------
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("kb-api-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("kb-api-key", keyInput.value.trim()));

async function api(path, { method = "GET", body, accept = "application/json" } = {}) {
  const headers = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (keyInput.value.trim()) headers["X-API-Key"] = keyInput.value.trim();
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) {
    let msg = `请求失败（HTTP ${res.status}）`;
    try {
      const err = (await res.json()).error;
      if (err) msg = `${errorText(res.status)}：${err.message}`;
    } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return accept === "application/json" ? res.json() : res.blob();
}

function errorText(status) {
  return ({ 400: "输入有误", 401: "需要有效的 API 密钥", 404: "未找到", 413: "内容过大", 422: "输入有误",
            429: "请求过于频繁", 504: "检索超时" })[status] || "出错了";
}

function setSummary(id, text, isError = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

function where(section, page) {
  return [section || "", page ? `第 ${page} 页` : ""].filter(Boolean).join(" · ");
}

// ---- tabs ------------------------------------------------------------------------------
const tabs = ["search", "ask", "match"];
function showTab(name) {
  for (const t of tabs) {
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
    $(`panel-${t}`).hidden = t !== name;
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "match") loadNeeds();
}
for (const t of tabs) $(`tab-${t}`).addEventListener("click", () => showTab(t));

// ---- 技术检索 ---------------------------------------------------------------------------
function hitCard(h, n) {
  return el("li", { class: "hit", "data-doc": h.doc_id },
    el("h3", {}, `${n}. ${h.title}`),
    el("div", { class: "meta" },
      el("span", { class: "badge" }, KIND_NAMES[h.kind] || h.kind),
      el("span", { class: "path" }, where(h.section, h.page)),
      el("span", {}, h.source),
      el("span", {}, `相关度 ${h.score.toFixed(3)}`)),
    el("p", { class: "text", html: h.highlighted || "" }));
}

$("search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const query = $("q").value.trim();
  if (!query) return;
  const filters = {};
  if ($("f-kind").value) filters.kind = $("f-kind").value;
  if ($("f-field").value.trim()) filters.field = $("f-field").value.trim();
  if ($("f-year").value.trim()) filters.year = $("f-year").value.trim();
  const button = ev.submitter || $("search-form").querySelector("button");
  button.disabled = true;
  setSummary("search-summary", "检索中…");
  const t0 = performance.now();
  try {
    const res = await api("/search", { method: "POST", body: { query, top_k: Number($("f-topk").value), filters } });
    const ms = Math.round(performance.now() - t0);
    setSummary("search-summary", res.hits.length
      ? `共 ${res.hits.length} 条结果，检索用时 ${Math.round(res.took_ms)} 毫秒（含网络 ${ms} 毫秒）`
      : "没有找到相关内容，换个说法试试。");
    $("search-hits").replaceChildren(...res.hits.map((h, i) => hitCard(h, i + 1)));
  } catch (err) {
    setSummary("search-summary", err.message, true);
    $("search-hits").replaceChildren();
  } finally {
    button.disabled = false;
  }
});

// ---- 智能问答 ---------------------------------------------------------------------------
// Filled in by renderAnswer(); the answer's [n] markers link to the numbered passages below it.
function renderAnswer(res) {
  const answer = $("ask-answer");
  answer.replaceChildren();
  const text = res.answer || "";
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    answer.append(text.slice(last, m.index));
    const a = el("a", { href: `#cite-${m[1]}` }, `[${m[1]}]`);
    a.addEventListener("click", (e) => { e.preventDefault(); openCitation(m[1]); });
    answer.append(el("sup", {}, a));
    last = m.index + m[0].length;
  }
  answer.append(text.slice(last));
  $("ask-citations").replaceChildren(...res.citations.map((c, i) => {
    const n = i + 1;
    return el("li", { id: `cite-${n}` },
      el("details", {},
        el("summary", {}, el("span", { class: "num" }, `[${n}]`), `${c.title} `,
          el("span", { class: "meta" }, where(c.section, c.page))),
        el("p", { class: "text" }, c.text || "")));
  }));
}

function openCitation(n) {
  const item = $(`cite-${n}`);
  if (!item) return;
  item.querySelector("details").open = true;
  item.scrollIntoView({ behavior: "smooth", block: "nearest" });
}

$("ask-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  setSummary("ask-summary", "思考中…");
  const t0 = performance.now();
  try {
    const res = await api("/ask", { method: "POST", body: { question } });
    renderAnswer(res);
    const n = res.citations.length;
    const ms = Math.round(performance.now() - t0);
    const note = res.found ? `引用 ${n} 段原文，用时 ${ms} 毫秒。点击编号查看原文。` : `未找到确切答案，列出最接近的 ${n} 段原文。`;
    setSummary("ask-summary", [note, ...(res.warnings || [])].join(" "), !res.found);
  } catch (err) {
    setSummary("ask-summary", err.message, true);
    $("ask-answer").replaceChildren();
    $("ask-citations").replaceChildren();
  }
});

// ---- 供需匹配 ---------------------------------------------------------------------------
let needsLoaded = false;
async function loadNeeds() {
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
    setSummary("match-summary", err.message, true);
  }
  select.replaceChildren(...options);
}

const REASON_ICONS = { terms: "术语", field: "领域", trl: "成熟度", region: "地区", score: "得分" };

function matchCard(m, n) {
  const reasons = m.reasons || [];
  const terms = reasons.find((r) => r.type === "terms");
  return el("li", { class: "hit", "data-doc": m.doc_id },
    el("h3", {}, `${n}. ${m.title}`),
    el("div", { class: "meta" },
      el("span", { class: "badge" }, KIND_NAMES[m.kind] || m.kind),
      el("span", {}, m.doc_id),
      m.field ? el("span", {}, m.field) : null,
      m.trl !== null && m.trl !== undefined ? el("span", {}, `TRL ${m.trl}`) : null,
      m.region ? el("span", {}, m.region) : null,
      el("span", {}, `匹配度 ${m.score.toFixed(3)}`)),
    el("ul", { class: "reasons" }, ...reasons.map((r) =>
      el("li", { class: `reason reason-${r.type}` }, el("b", {}, `${REASON_ICONS[r.type] || r.type}：`), r.text))),
    el("details", {}, el("summary", {}, "查看详情"),
      el("p", { class: "text", html: (terms && terms.highlighted) || "" })));
}

$("match-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const needId = $("need").value;
  const text = $("problem").value.trim();
  if (!needId && !text) { setSummary("match-summary", "请选择一项需求或描述您的问题。", true); return; }
  setSummary("match-summary", "匹配中…");
  try {
    const res = await api("/match", { method: "POST", body: needId ? { need_id: needId, top_k: 5 } : { text, top_k: 5 } });
    const items = res.matches;
    const what = res.query.title ? `「${res.query.title}」` : "您描述的问题";
    setSummary("match-summary", items.length ? `为${what}找到 ${items.length} 项可能合适的技术成果` : "暂时没有合适的成果。");
    $("match-results").replaceChildren(...items.map((m, i) => matchCard(m, i + 1)));
  } catch (err) {
    setSummary("match-summary", err.message, true);
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
    setSummary("match-summary", err.message, true);
  }
});

// ---- start -----------------------------------------------------------------------------
async function start() {
  try {
    const h = await api("/health");
    const features = h.features || ["search"];
    for (const t of ["ask", "match"]) {
      if (!features.includes(t)) {
        $(`tab-${t}`).disabled = true;
        $(`tab-${t}`).title = "本服务器未开放此功能";
      }
    }
    $("status").textContent = `已收录 ${h.documents} 篇文档、${h.chunks} 个段落 · 模型 ${h.embed_model}`;
    const wanted = location.hash.slice(1);
    showTab(tabs.includes(wanted) && !$(`tab-${wanted}`).disabled ? wanted : "search");
  } catch (err) {
    $("status").textContent = `无法连接服务：${err.message}`;
  }
}
start();
