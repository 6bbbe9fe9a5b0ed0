// Shared by the page's modules: DOM building, the JSON API with the optional key, small formatters.

export const $ = (id) => document.getElementById(id);
export const KIND_NAMES = { document: "文档", plan: "规划", paper: "论文", project: "项目", need: "技术需求", result: "技术成果", expert: "专家团队" };

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "html") node.innerHTML = v; // only for server-escaped highlight HTML
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const keyInput = $("api-key");
keyInput.value = localStorage.getItem("kb-api-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("kb-api-key", keyInput.value.trim()));

export async function api(path, { method = "GET", body, accept = "application/json" } = {}) {
  const headers = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (keyInput.value.trim()) headers["X-API-Key"] = keyInput.value.trim();
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) {
    let msg = `请求失败（HTTP ${res.status}）`;
    let fields = null;
    try {
      const err = (await res.json()).error;
      if (err) msg = `${errorText(res.status)}：${err.message}`;
      if (err && err.fields) fields = err.fields; // 422 invalid_record: what is wrong with each field
    } catch (_) { /* not JSON */ }
    throw Object.assign(new Error(msg), { fields });
  }
  return accept === "application/json" ? res.json() : res.blob();
}

function errorText(status) {
  return ({ 400: "输入有误", 401: "需要有效的 API 密钥", 403: "无权操作", 404: "未找到", 409: "冲突", 413: "内容过大", 422: "输入有误",
            429: "请求过于频繁", 504: "检索超时" })[status] || "出错了";
}

export function setSummary(id, text, kind = "") {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("empty", kind === "empty");
}

export function where(section, page) {
  return [section || "", page ? `第 ${page} 页` : ""].filter(Boolean).join(" · ");
}

// A link to the document view, opened at one passage (a hit's or a citation's chunk id).
export function docLink(docId, chunkId, query, label = "查看全文") {
  const params = new URLSearchParams({ id: docId });
  if (chunkId) params.set("chunk", chunkId);
  if (query) params.set("q", query);
  return el("a", { class: "doc-link", href: `#doc?${params}` }, label);
}
