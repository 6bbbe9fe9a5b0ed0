// 技术检索: filters built from GET /facets, hits grouped by document, honest empty results; the document view.
import { $, KIND_NAMES, api, docLink, el, setSummary, where } from "./common.js";

const FILTERS = [["kind", "f-kind"], ["field", "f-field"], ["year", "f-year"]];

// Each filter is a dropdown of the values present in the index, with document counts; hidden when empty.
export async function loadFacets() {
  const facets = await api("/facets");
  for (const [key, id] of FILTERS) {
    const values = facets[key] || [];
    const select = $(id);
    select.replaceChildren(el("option", { value: "" }, "全部"),
      ...values.map((v) => el("option", { value: v.value },
        `${key === "kind" ? KIND_NAMES[v.value] || v.value : v.value}（${v.count}）`)));
    select.closest("label").hidden = values.length === 0;
  }
}

function chosenFilters() {
  const filters = {};
  for (const [key, id] of FILTERS) if ($(id).value) filters[key] = $(id).value;
  return filters;
}

function describe(filters) {
  const names = { kind: "类型", field: "领域", year: "年份" };
  return Object.entries(filters).map(([k, v]) => `${names[k]}：${k === "kind" ? KIND_NAMES[v] || v : v}`).join("、");
}

// Hits of one document sit together, in the order of the document's best hit.
export function groupByDocument(hits) {
  const groups = new Map();
  hits.forEach((h, i) => {
    if (!groups.has(h.doc_id)) groups.set(h.doc_id, []);
    groups.get(h.doc_id).push({ ...h, rank: i + 1 });
  });
  return [...groups.values()];
}

function passage(h, query) {
  return el("li", { class: "passage", "data-chunk": h.id },
    el("div", { class: "meta" },
      el("span", { class: "path" }, where(h.section, h.page) || "正文"),
      el("span", { class: "score" }, `相关度 ${h.score.toFixed(3)}`),
      docLink(h.doc_id, h.id, query, "在全文中查看")),
    el("p", { class: "text", html: h.highlighted || "" }));
}

function docCard(group, n, query) {
  const first = group[0];
  return el("li", { class: "hit", "data-doc": first.doc_id },
    el("h3", {}, `${n}. ${first.title}`),
    el("div", { class: "meta" },
      el("span", { class: "badge" }, KIND_NAMES[first.kind] || first.kind),
      el("span", { class: "source" }, first.source),
      group.length > 1 ? el("span", {}, `${group.length} 段相关`) : null,
      docLink(first.doc_id, first.id, query)),
    el("ol", { class: "passages" }, ...group.map((h) => passage(h, query))));
}

async function explainEmpty(query, filters) {
  if (Object.keys(filters).length) {
    const all = await api("/search", { method: "POST", body: { query, top_k: 1, filters: {} } });
    if (all.hits.length) {
      setSummary("search-summary", `在筛选条件（${describe(filters)}）下没有结果；去掉筛选后有相关内容。`, "empty");
      $("clear-filters").hidden = false;
      return;
    }
  }
  setSummary("search-summary", `知识库中没有与「${query}」相关的内容。请换个说法，或检查错别字。`, "empty");
}

async function runSearch(ev) {
  ev.preventDefault();
  const query = $("q").value.trim();
  if (!query) return;
  const filters = chosenFilters();
  const button = $("search-form").querySelector("button");
  button.disabled = true;
  $("clear-filters").hidden = true;
  setSummary("search-summary", "检索中…");
  const t0 = performance.now();
  try {
    const res = await api("/search", { method: "POST", body: { query, top_k: Number($("f-topk").value), filters } });
    const ms = Math.round(performance.now() - t0);
    const groups = res.found === false ? [] : groupByDocument(res.hits);
    $("search-hits").replaceChildren(...groups.map((g, i) => docCard(g, i + 1, query)));
    if (groups.length) {
      setSummary("search-summary", `${groups.length} 篇文档中共 ${res.hits.length} 条结果，检索用时 ` +
                 `${Math.round(res.took_ms)} 毫秒（含网络 ${ms} 毫秒）`);
    } else {
      await explainEmpty(query, filters);
    }
  } catch (err) {
    setSummary("search-summary", err.message, "error");
    $("search-hits").replaceChildren();
  } finally {
    button.disabled = false;
  }
}

$("search-form").addEventListener("submit", runSearch);
$("clear-filters").addEventListener("click", () => {
  for (const [, id] of FILTERS) $(id).value = "";
  $("search-form").requestSubmit();
});

// ---- the document view: every passage in order, the hit's passage marked and scrolled to ----------------
export async function showDocument(params) {
  const docId = params.get("id");
  const chunk = params.get("chunk");
  const q = params.get("q");
  const query = new URLSearchParams();
  if (chunk) query.set("chunk", chunk);
  if (q) query.set("q", q);
  $("doc-title").textContent = "加载中…";
  $("doc-meta").replaceChildren();
  $("doc-passages").replaceChildren();
  try {
    const doc = await api(`/documents/${encodeURIComponent(docId)}?${query}`);
    $("doc-title").textContent = doc.title;
    $("doc-meta").replaceChildren(el("span", { class: "badge" }, KIND_NAMES[doc.kind] || doc.kind),
      el("span", { class: "source" }, doc.source), el("span", {}, `共 ${doc.passages.length} 段`));
    let section = null;
    const items = [];
    for (const p of doc.passages) {
      if (p.section !== section && p.section) items.push(el("li", { class: "section" }, p.section));
      section = p.section;
      items.push(el("li", { class: p.position === doc.focus ? "passage focus" : "passage", id: `p-${p.position}`,
                            "data-chunk": p.id },
        p.page ? el("span", { class: "page" }, `第 ${p.page} 页`) : null,
        p.highlighted ? el("p", { class: "text", html: p.highlighted }) : el("p", { class: "text" }, p.text)));
    }
    $("doc-passages").replaceChildren(...items);
    if (doc.focus !== null && doc.focus !== undefined) $(`p-${doc.focus}`).scrollIntoView({ block: "center" });
  } catch (err) {
    $("doc-title").textContent = err.message;
  }
}

