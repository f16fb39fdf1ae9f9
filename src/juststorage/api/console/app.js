// The console's page: sign-in, tenant and namespace, folders, details, uploads,
// deletes and usage. Everything the server sends is put in as text, never as HTML.

import { ApiError, addressableByKey, byKeyPath, describe, request, setHooks, token } from "./api.js";
import { barChart } from "./chart.js";
import { uploadFile } from "./upload.js";

const PAGE_SIZE = 50;
const DELIMITER = "/";
const LINK_SECONDS = 600;
const NAMESPACES_KEY = "juststorage.namespaces";

const $ = (id) => document.getElementById(id);

const state = {
  tenant: "",
  namespace: "",
  folder: "",
  cursors: [null], // the cursor of each page shown so far; the last is the current page
  nextCursor: null,
  selected: null, // the object (one version) in the details panel
};

function el(name, attributes = {}, ...children) {
  const element = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") element.className = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value);
  }
  for (const child of children) element.append(child);
  return element;
}

// --- messages ---------------------------------------------------------------

function showError(error) {
  $("alert-text").textContent = describe(error);
  $("alert").hidden = false;
}

function clearError() {
  $("alert").hidden = true;
  $("alert-text").textContent = "";
}

function say(text) {
  $("status").textContent = text;
}

async function guarded(action) {
  try {
    clearError();
    await action();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
  }
}

// --- formatting ---------------------------------------------------------------

export function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatDate(text) {
  return text ? text.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : "";
}

function formatMoney(amount, currency) {
  // Cents, or two significant digits for amounts below a cent (a small tenant's cost).
  const digits = amount > 0 && amount < 0.01
    ? { maximumSignificantDigits: 2 }
    : { minimumFractionDigits: 2, maximumFractionDigits: 2 };
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency, ...digits }).format(amount);
  } catch {
    return `${amount.toFixed(4)} ${currency}`;
  }
}

// --- sign-in --------------------------------------------------------------------

function showSignIn(message) {
  token.clear();
  $("app").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  if (message) showError(message);
  $("token").focus();
}

async function enter() {
  const me = await request("GET", "/v1/whoami");
  $("subject").textContent = `${me.subject} · ${me.scopes.join(", ")}`;
  const select = $("tenant");
  select.replaceChildren();
  const named = me.tenants.filter((tenant) => tenant !== "*");
  for (const tenant of named) select.append(el("option", { value: tenant }, tenant));
  const any = me.tenants.includes("*");
  if (any) select.append(el("option", { value: "*" }, "other tenant…"));
  select.hidden = !named.length;
  $("tenant-typed").hidden = Boolean(named.length);
  $("signin").hidden = true;
  $("who").hidden = false;
  $("app").hidden = false;
  rememberedNamespaces();
  $("namespace").focus();
  await loadNamespaces();
}

async function signIn(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  token.set(value);
  $("token").value = "";
  await guarded(enter);
}

// --- tenant and namespace --------------------------------------------------------

function rememberedNamespaces(add) {
  let names = [];
  try {
    names = JSON.parse(sessionStorage.getItem(NAMESPACES_KEY) || "[]");
  } catch {
    names = [];
  }
  if (add && !names.includes(add)) names = [add, ...names].slice(0, 20);
  sessionStorage.setItem(NAMESPACES_KEY, JSON.stringify(names));
  $("namespaces").replaceChildren(...names.map((name) => el("option", { value: name })));
}

/** The tenant's namespaces as buttons (GET /v1/namespaces); nothing if it cannot tell. */
async function loadNamespaces() {
  const tenant = chosenTenant();
  $("namespace-picks").hidden = true;
  if (!tenant) return;
  let answer;
  try {
    answer = await request("GET", "/v1/namespaces", { query: { tenant } });
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) return; // e.g. no objects:read
    throw error;
  }
  const items = answer.namespaces.map((entry) => el("li", {}, el("button", {
    type: "button", class: "pick", "data-namespace": entry.namespace,
    title: `${entry.objects} object versions, ${formatBytes(entry.bytes)}`,
    onclick: () => {
      $("namespace").value = entry.namespace;
      $("scope-form").requestSubmit();
    },
  }, entry.namespace)));
  $("namespace-list").replaceChildren(...items);
  $("namespace-picks").hidden = items.length === 0;
}

function chosenTenant() {
  const select = $("tenant");
  if (select.hidden || select.value === "*") return $("tenant-typed").value.trim();
  return select.value;
}

function tenantChanged() {
  $("tenant-typed").hidden = !($("tenant").value === "*" || $("tenant").hidden);
  guarded(loadNamespaces);
}

async function open(event) {
  event.preventDefault();
  state.tenant = chosenTenant();
  state.namespace = $("namespace").value.trim();
  if (!state.tenant || !state.namespace) {
    showError("Name a tenant and a namespace.");
    return;
  }
  rememberedNamespaces(state.namespace);
  await guarded(async () => {
    if ($("tab-usage").getAttribute("aria-selected") === "true") await loadUsage();
    else await goTo("");
  });
}

// --- listing -----------------------------------------------------------------------

async function goTo(folder) {
  say("");
  state.folder = folder;
  state.cursors = [null];
  $("search").value = "";
  closeDetails();
  await loadPage();
}

async function loadPage() {
  if (!state.tenant || !state.namespace) return;
  const search = $("search").value;
  const page = await request("GET", "/v1/objects", {
    query: {
      tenant: state.tenant,
      namespace: state.namespace,
      prefix: state.folder + search,
      delimiter: DELIMITER,
      limit: PAGE_SIZE,
      cursor: state.cursors[state.cursors.length - 1],
    },
  });
  state.nextCursor = page.next_cursor;
  renderCrumbs();
  renderRows(page.common_prefixes || [], page.items);
  $("prev-page").disabled = state.cursors.length <= 1;
  $("next-page").disabled = !state.nextCursor;
}

function renderCrumbs() {
  const crumbs = [el("button", { type: "button", class: "link", onclick: () => guarded(() => goTo("")) },
    `${state.tenant} / ${state.namespace}`)];
  let path = "";
  for (const part of state.folder.split(DELIMITER).filter(Boolean)) {
    path += part + DELIMITER;
    const target = path;
    crumbs.push(el("span", { class: "sep", "aria-hidden": "true" }, "›"));
    crumbs.push(el("button", { type: "button", class: "link", onclick: () => guarded(() => goTo(target)) }, part));
  }
  crumbs[crumbs.length - 1].setAttribute("aria-current", "location");
  $("crumbs").replaceChildren(...crumbs);
}

function renderRows(prefixes, items) {
  const rows = [];
  for (const prefix of prefixes) {
    const name = prefix.slice(state.folder.length);
    rows.push(el("tr", { class: "folder", "data-prefix": prefix },
      el("td", {}, el("button", {
        type: "button", class: "link", onclick: () => guarded(() => goTo(prefix)),
      }, el("span", { class: "icon folder", "aria-hidden": "true" }), name)),
      el("td", {}, ""), el("td", {}, ""), el("td", {}, "")));
  }
  for (const item of items) {
    const name = item.key.slice(state.folder.length) || "(object named like this folder)";
    rows.push(el("tr", { class: "object", "data-key": item.key },
      el("td", {}, el("button", {
        type: "button", class: "link", onclick: () => guarded(() => showDetails(item)),
      }, el("span", { class: "icon file", "aria-hidden": "true" }), name)),
      el("td", { class: "num" }, formatBytes(item.size_bytes)),
      el("td", {}, item.storage_class),
      el("td", {}, formatDate(item.created_at))));
  }
  $("rows").replaceChildren(...rows);
  $("empty").hidden = rows.length > 0;
}

// --- details ---------------------------------------------------------------------------

function closeDetails() {
  state.selected = null;
  $("details").hidden = true;
  $("link-row").hidden = true;
}

async function showDetails(item) {
  state.selected = item;
  $("details-title").textContent = item.key;
  const facts = [
    ["Id", item.id], ["SHA-256", item.content_hash], ["Size", `${formatBytes(item.size_bytes)} (${item.size_bytes} bytes)`],
    ["Class", item.storage_class], ["Content type", item.content_type], ["Created", formatDate(item.created_at)],
  ];
  $("facts").replaceChildren(...facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
  $("link-row").hidden = true;
  $("details").hidden = false;
  const page = await request("GET", "/v1/objects", {
    query: {
      tenant: state.tenant, namespace: state.namespace, prefix: item.key, versions: "true", limit: 100,
    },
  });
  const versions = page.items.filter((version) => version.key === item.key);
  $("versions").replaceChildren(...versions.map((version) => el("tr",
    version.id === item.id ? { "aria-current": "true", class: "current" } : {},
    el("td", {}, formatDate(version.created_at)),
    el("td", { class: "num" }, formatBytes(version.size_bytes)),
    el("td", {}, el("button", {
      type: "button", class: "link mono", onclick: () => guarded(() => showDetails(version)),
    }, version.id.slice(0, 8))))));
}

async function presign(object, seconds) {
  const signed = await request("POST", "/v1/presign", {
    // By id: the link reads this one version, whatever is uploaded to the key later.
    json: { method: "GET", tenant: object.tenant_id, id: object.id, expires_in: seconds },
  });
  return new URL(signed.url, window.location.origin).href;
}

function clickLink(href, filename) {
  const link = el("a", { href, download: filename, rel: "noopener noreferrer" });
  document.body.append(link);
  link.click();
  link.remove();
}

async function download() {
  const object = state.selected;
  const filename = object.key.split(DELIMITER).pop() || "download";
  let url;
  try {
    url = await presign(object, 60);
  } catch (error) {
    if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 405)) throw error;
    url = null; // a server without presigned URLs: fetch with the credential instead
  }
  if (url) {
    // The server answers with Content-Disposition: attachment and a sandbox CSP.
    clickLink(url, filename);
    return;
  }
  const headers = { Authorization: `Bearer ${token.get()}`, "X-Tenant": object.tenant_id };
  const response = await fetch(`/v1/objects/${encodeURIComponent(object.id)}`, { headers, credentials: "omit" });
  if (!response.ok) throw new ApiError(response.status, "", `HTTP ${response.status}`, "");
  const blob = new Blob([await response.blob()], { type: "application/octet-stream" });
  const objectUrl = URL.createObjectURL(blob);
  clickLink(objectUrl, filename);
  setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
}

async function copyLink() {
  const url = await presign(state.selected, LINK_SECONDS);
  $("link").value = url;
  $("link-row").hidden = false;
  $("link").select();
  try {
    await navigator.clipboard.writeText(url);
    say("Presigned link copied to the clipboard (valid for 10 minutes).");
  } catch {
    say("Presigned link ready below (valid for 10 minutes); copy it from the field.");
  }
}

function confirmDialog(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

async function deleteVersion() {
  const object = state.selected;
  if (!(await confirmDialog(`Delete version ${object.id} of “${object.key}”? This cannot be undone.`))) return;
  await request("DELETE", `/v1/objects/${encodeURIComponent(object.id)}`, {
    headers: { "X-Tenant": object.tenant_id },
  });
  say(`Deleted version ${object.id} of ${object.key}.`);
  closeDetails();
  await loadPage();
}

/** Every version of the key of `object`, deleted one by one by id: for the keys `.`
 * and `..`, which no by-key URL a browser sends can name. */
async function deleteEveryVersionById(object) {
  const ids = [];
  let cursor = null;
  do {
    const page = await request("GET", "/v1/objects", {
      query: {
        tenant: object.tenant_id, namespace: object.namespace, prefix: object.key,
        versions: "true", limit: 1000, cursor,
      },
    });
    for (const version of page.items) if (version.key === object.key) ids.push(version.id);
    cursor = page.next_cursor;
  } while (cursor);
  for (const id of ids) {
    try {
      await request("DELETE", `/v1/objects/${encodeURIComponent(id)}`, {
        headers: { "X-Tenant": object.tenant_id },
      });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error; // gone meanwhile
    }
  }
}

async function deleteKey() {
  const object = state.selected;
  if (!(await confirmDialog(`Delete every version of “${object.key}”? This cannot be undone.`))) return;
  if (addressableByKey(object.key)) {
    await request("DELETE", byKeyPath(object.namespace, object.tenant_id, object.key));
  } else {
    await deleteEveryVersionById(object);
  }
  say(`Deleted ${object.key}.`);
  closeDetails();
  await loadPage();
}

// --- uploads -----------------------------------------------------------------------------

async function uploadAll(files) {
  if (!state.tenant || !state.namespace) {
    showError("Open a tenant and a namespace first.");
    return;
  }
  const storageClass = $("class").value;
  const jobs = [...files].map((file) => uploadOne(file, storageClass));
  await Promise.allSettled(jobs);
  await guarded(loadPage);
  await guarded(loadNamespaces); // the first upload into a namespace makes it appear
}

async function uploadOne(file, storageClass) {
  const key = state.folder + file.name;
  const bar = el("progress", { max: String(file.size || 1), value: "0", "aria-label": `Upload of ${key}` });
  const text = el("span", { class: "progress-text" }, "starting…");
  const row = el("li", { "data-key": key, "data-state": "uploading" }, el("span", { class: "name" }, key), bar, text);
  $("uploads").prepend(row);
  try {
    const object = await uploadFile(
      { tenant: state.tenant, namespace: state.namespace, key, storageClass }, file,
      (sent, total, parts) => {
        bar.value = sent;
        const share = total ? Math.floor((sent / total) * 100) : 100;
        const how = parts ? `, ${parts} parts` : "";
        text.textContent = `${share}% of ${formatBytes(total)}${how}`;
        if (parts) row.dataset.parts = String(parts);
      },
    );
    bar.value = file.size || 1;
    row.dataset.state = "done";
    row.dataset.id = object.id;
    text.textContent = `done: ${formatBytes(object.size_bytes)}`;
  } catch (error) {
    row.dataset.state = "failed";
    text.textContent = `failed: ${describe(error)}`;
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
  }
}

function setUpDrop() {
  const zone = $("drop");
  const stop = (event) => {
    event.preventDefault();
    event.stopPropagation();
  };
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      stop(event);
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", (event) => {
    stop(event);
    zone.classList.remove("over");
  });
  zone.addEventListener("drop", (event) => {
    stop(event);
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) uploadAll(event.dataTransfer.files);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      $("file-input").click();
    }
  });
  $("pick-files").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", () => {
    const files = [...$("file-input").files];
    $("file-input").value = "";
    uploadAll(files);
  });
}

async function newFolder() {
  const dialog = $("folder-dialog");
  $("folder-name").value = "";
  dialog.returnValue = "";
  dialog.showModal();
  const ok = await new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
  const name = $("folder-name").value.trim().replace(/^\/+|\/+$/g, "");
  if (!ok || !name) return;
  state.folder = `${state.folder}${name}${DELIMITER}`;
  state.cursors = [null];
  closeDetails();
  await loadPage();
  say(`Folder “${name}” is open; it exists once something is uploaded into it.`);
}

// --- usage -------------------------------------------------------------------------------

async function loadUsage() {
  const tenant = state.tenant || chosenTenant();
  if (!tenant) {
    showError("Name a tenant first.");
    return;
  }
  const usage = await request("GET", "/v1/usage", { query: { tenant } });
  const classes = Object.entries(usage.by_storage_class);
  $("usage-summary").textContent = `Tenant ${usage.tenant_id}: ${usage.objects} object versions, `
    + `${formatBytes(usage.logical_bytes)}, ${formatMoney(usage.monthly_cost, usage.currency)} a month.`;
  const chart = barChart([
    {
      title: "Stored bytes",
      rows: classes.map(([name, c]) => ({ label: name, value: c.bytes, text: formatBytes(c.bytes) })),
    },
    {
      title: `Monthly cost (${usage.currency})`,
      rows: classes.map(([name, c]) => ({
        label: name, value: c.monthly_cost, text: formatMoney(c.monthly_cost, usage.currency),
      })),
    },
  ], `Usage of tenant ${usage.tenant_id} per storage class`);
  $("chart").replaceChildren(chart);
  $("usage-rows").replaceChildren(...classes.map(([name, c]) => el("tr", { "data-class": name },
    el("th", { scope: "row" }, name),
    el("td", { class: "num" }, String(c.objects)),
    el("td", { class: "num" }, formatBytes(c.bytes)),
    el("td", { class: "num" }, formatMoney(c.monthly_cost, usage.currency)))));
}

function selectTab(name) {
  const usage = name === "usage";
  $("tab-objects").setAttribute("aria-selected", String(!usage));
  $("tab-usage").setAttribute("aria-selected", String(usage));
  $("objects").hidden = usage;
  $("usage").hidden = !usage;
  if (usage) guarded(loadUsage);
}

// --- start -----------------------------------------------------------------------------------

function start() {
  setHooks({
    unauthorized: (error) => showSignIn(error),
    waiting: (ms) => say(ms ? `The server asked to slow down; retrying in ${Math.ceil(ms / 1000)} s…` : ""),
  });
  $("signin-form").addEventListener("submit", (event) => signIn(event));
  $("sign-out").addEventListener("click", () => {
    sessionStorage.clear();
    showSignIn();
    clearError();
  });
  $("alert-close").addEventListener("click", clearError);
  $("scope-form").addEventListener("submit", (event) => open(event));
  $("tenant").addEventListener("change", tenantChanged);
  $("tenant-typed").addEventListener("change", () => guarded(loadNamespaces));
  $("tab-objects").addEventListener("click", () => selectTab("objects"));
  $("tab-usage").addEventListener("click", () => selectTab("usage"));
  for (const tab of [$("tab-objects"), $("tab-usage")]) {
    tab.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        const other = tab.id === "tab-objects" ? $("tab-usage") : $("tab-objects");
        other.focus();
        other.click();
      }
    });
  }
  let searchTimer = 0;
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.cursors = [null];
      guarded(loadPage);
    }, 250);
  });
  $("next-page").addEventListener("click", () => {
    state.cursors.push(state.nextCursor);
    guarded(loadPage);
  });
  $("prev-page").addEventListener("click", () => {
    state.cursors.pop();
    guarded(loadPage);
  });
  $("new-folder").addEventListener("click", () => guarded(newFolder));
  $("download").addEventListener("click", () => guarded(download));
  $("presign").addEventListener("click", () => guarded(copyLink));
  $("delete-version").addEventListener("click", () => guarded(deleteVersion));
  $("delete-key").addEventListener("click", () => guarded(deleteKey));
  setUpDrop();
  if (token.get()) guarded(enter);
  else showSignIn();
}

start();
