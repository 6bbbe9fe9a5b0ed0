// cbm-kb web page: three tabs and a document view over the JSON API. ES modules, no framework, no build step,
// nothing inline (a strict Content-Security-Policy fits).
import { $, api } from "./common.js";
import { loadNeeds } from "./market.js";
import { loadRecordForm } from "./records.js";
import { loadFacets, showDocument } from "./search.js";

const tabs = ["search", "ask", "match", "records"];
let lastTab = "search";
let tabShown = false; // a tab was shown before the document view: "back" returns to it through history

function showPanel(name) {
  for (const t of tabs) {
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
    $(`panel-${t}`).hidden = t !== name;
  }
  $("panel-doc").hidden = name !== "doc";
}

function showTab(name) {
  lastTab = name;
  tabShown = true;
  showPanel(name);
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "match") loadNeeds();
  if (name === "records") loadRecordForm();
}
for (const t of tabs) $(`tab-${t}`).addEventListener("click", () => showTab(t));

// #doc?id=…&chunk=…&q=… opens the document view; the back button returns to the tab it came from.
function route() {
  const hash = location.hash.slice(1);
  if (hash.startsWith("doc?")) {
    showPanel("doc");
    showDocument(new URLSearchParams(hash.slice(4)));
    return;
  }
  showTab(tabs.includes(hash) && !$(`tab-${hash}`).disabled ? hash : lastTab);
}
window.addEventListener("hashchange", route);
$("doc-back").addEventListener("click", () => {
  if (tabShown) history.back();
  else showTab(lastTab);
});

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
    $("status").textContent = `已收录 ${h.documents} 篇文档、${h.chunks} 个段落`;
    route();
    await loadFacets();
  } catch (err) {
    $("status").textContent = `无法连接服务：${err.message}`;
  }
}
start();
