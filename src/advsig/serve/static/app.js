// The advsig page: checks dropped images with the service's JSON API.
// One request per image (the server batches concurrent requests into one forward pass), so a
// file the server refuses (too large, unreadable) fails alone. Everything from the server is
// inserted as text, never as HTML. The key lives in the input field only; nothing is stored.
"use strict";

const PARALLEL = 3; // requests in flight; the server's batcher gathers them
const MAX_RETRIES = 5; // on 429 / 503, after waiting Retry-After

const state = { files: [], urls: [], kit: null, owners: null, running: false, rerun: false };

class KeyRefused extends Error {}

function $(id) {
  return document.getElementById(id);
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function detailOf(body, status) {
  // FastAPI sends {"detail": "..."} or, for validation errors, {"detail": [{"msg": ...}]}.
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((x) => x.msg || JSON.stringify(x)).join("; ");
  return `HTTP ${status}`;
}

async function readJson(response) {
  try {
    return await response.json();
  } catch (_) {
    return null;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function formatP(p) {
  if (p === null || p === undefined) return "–";
  if (p === 0) return "< 1e-300";
  return p < 1e-3 ? p.toExponential(2) : p.toPrecision(3);
}

function formatNum(x) {
  return x === null || x === undefined ? "–" : x.toFixed(3);
}

function setKeyStatus(text, kind) {
  const node = $("key-status");
  node.textContent = text;
  node.className = kind || "";
}

function showBanner(text) {
  const banner = $("banner");
  banner.textContent = text;
  banner.hidden = false;
}

function hideBanner() {
  $("banner").hidden = true;
  $("banner").textContent = "";
}

function authHeaders() {
  return { Authorization: `Bearer ${$("api-key").value.trim()}` };
}

// ------------------------------------------------------------------------------- health
async function loadHealth() {
  try {
    const r = await fetch("/v1/health");
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    state.kit = await r.json();
    $("kit-info").textContent = `Kit ${state.kit.kit}, ${state.kit.num_bits}-bit codes.`;
  } catch (err) {
    showBanner(`The service did not answer /v1/health (${err.message}).`);
  }
}

// ------------------------------------------------------------------------- key and role
// GET /v1/registry/owners tells the three cases apart without sending an image:
// 401 bad key, 403 a valid key without the admin role, 200 an admin key (and its data).
async function checkKey() {
  const kit = state.kit ? `?kit=${encodeURIComponent(state.kit.kit)}` : "";
  const r = await fetch(`/v1/registry/owners${kit}`, { headers: authHeaders() });
  const body = await readJson(r);
  if (r.status === 401) throw new KeyRefused(detailOf(body, r.status));
  if (r.status === 200) return { admin: true, owners: body };
  if (r.status === 403) return { admin: false, owners: null };
  throw new Error(`checking the key failed: ${detailOf(body, r.status)}`);
}

function renderRegistry(owners) {
  const section = $("registry");
  const rows = $("registry-rows");
  rows.replaceChildren();
  section.hidden = owners === null;
  if (owners === null) return;
  for (const owner of owners) {
    const codes = owner.codes.length ? owner.codes : [null];
    for (const code of codes) {
      const tr = el("tr");
      tr.append(
        el("td", "", owner.name),
        el("td", "", code && code.model ? code.model : "–"),
        el("td", "mono", code ? code.code : "no code"),
        el("td", "", code ? code.status : "–"),
      );
      rows.append(tr);
    }
  }
  if (!owners.length) {
    const tr = el("tr");
    const td = el("td", "hint", "No owners registered yet.");
    td.colSpan = 4;
    tr.append(td);
    rows.append(tr);
  }
}

// ------------------------------------------------------------------------------ results
function bitString(hex, numBits) {
  return BigInt(`0x${hex}`).toString(2).padStart(numBits, "0");
}

function hamming(a, b) {
  let x = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let n = 0;
  while (x) {
    n += Number(x & 1n);
    x >>= 1n;
  }
  return n;
}

function row(list, label, value, cls) {
  list.append(el("dt", "", label), el("dd", cls || "", value));
}

function renderBits(hex, confidence) {
  const numBits = confidence.length || (state.kit ? state.kit.num_bits : hex.length * 4);
  const bits = bitString(hex, numBits);
  const strip = el("div", "bits");
  strip.setAttribute("aria-label", "decoded bits with confidence");
  [...bits].forEach((b, i) => {
    const c = confidence[i];
    const cell = el("span", "bit", b);
    if (c !== undefined) {
      cell.classList.add(c >= 0.9 ? "conf-high" : c >= 0.7 ? "conf-mid" : "conf-low");
      cell.style.setProperty("--conf", String((c - 0.5) * 2)); // CSSOM: allowed by the CSP
      cell.title = `bit ${i}: ${b}, confidence ${(c * 100).toFixed(1)}%`;
    }
    strip.append(cell);
  });
  const wrap = el("div");
  wrap.append(strip);
  if (confidence.length) {
    const low = Math.min(...confidence);
    wrap.append(el("span", "hint", `lowest bit confidence ${(low * 100).toFixed(1)}%`));
  }
  return wrap;
}

// Admin only: the matched owner's registered code nearest to the decoded bits.
function registeredCode(result) {
  if (!state.owners || !result.owner || !result.bits) return null;
  const owner = state.owners.find((o) => o.name === result.owner);
  if (!owner || !owner.codes.length) return null;
  let best = null;
  for (const c of owner.codes) {
    const d = hamming(c.code, result.bits);
    if (best === null || d < best.distance) best = { code: c, distance: d };
  }
  return best;
}

// The service's manifest summary (schemas.C2paManifest): state, how it was made, who signed.
function manifestSummary(m) {
  let state = String(m.validation_state);
  if (state === "valid") state = "valid (untrusted signer)";
  if (state === "invalid" && m.reason) state = `invalid: ${String(m.reason).slice(0, 160)}`;
  const parts = [state];
  if (m.digital_source_type) parts.push(String(m.digital_source_type).split("/").pop());
  if (m.claim_generator) parts.push(String(m.claim_generator).slice(0, 80));
  if (m.signer) parts.push(`signed by ${String(m.signer).slice(0, 80)}`);
  if (m.code) parts.push(`code ${m.code}`);
  return parts.join(" · ");
}

function c2paSummary(c2pa) {
  if (typeof c2pa !== "object") return String(c2pa).slice(0, 200);
  if ("validation_state" in c2pa && "source" in c2pa) return manifestSummary(c2pa);
  // Another shape: show a few telling fields, whatever they are.
  const known = [
    "validation_state", "status", "valid", "claim_generator", "issuer", "signer", "title",
    "time", "created", "error",
  ];
  const keys = known.filter((k) => k in c2pa);
  const chosen = keys.length ? keys : Object.keys(c2pa).filter((k) => typeof c2pa[k] !== "object");
  const parts = chosen.slice(0, 4).map((k) => `${k}: ${String(c2pa[k]).slice(0, 80)}`);
  if (Array.isArray(c2pa.assertions)) parts.push(`${c2pa.assertions.length} assertions`);
  return parts.length ? parts.join(" · ") : "manifest present";
}

function renderResult(card, r) {
  const body = card.querySelector(".body");
  body.replaceChildren();
  const verdict = card.querySelector(".verdict");
  if (r.error) {
    setVerdict(verdict, "error", "Could not check");
    body.append(el("p", "error-text", r.error));
    return;
  }
  setVerdict(verdict, r.signed ? "signed" : "not-signed", r.signed ? "Signed" : "Not signed");
  const dl = el("dl");
  row(dl, "Score", `${formatNum(r.score)} (threshold ${formatNum(r.threshold)})`, "mono");
  row(dl, "p-value", formatP(r.p_value), "mono p-value");
  if (r.bits) {
    const dd = el("dd", "code");
    dd.append(el("span", "mono code-hex", r.bits), renderBits(r.bits, r.bit_confidence || []));
    dl.append(el("dt", "", "Code"), dd);
  }
  if (r.attribution) {
    const a = r.attribution;
    if (r.signed || r.owner) {
      const who = r.owner ? r.owner + (a.model ? ` (model ${a.model})` : "") : "unknown";
      row(dl, "Owner", who, r.owner ? "owner" : "owner unknown");
    }
    if (a.distance !== null && a.distance !== undefined) {
      row(dl, "Match", `${a.distance} bits off, p ${formatP(a.p_value)}`, "mono");
    }
    row(dl, "Why", a.reason, "hint");
    if (a.code_status === "revoked") row(dl, "Code status", "revoked", "warn");
  }
  const reg = registeredCode(r);
  if (reg) row(dl, "Registered code", `${reg.code.code} (${reg.code.status})`, "mono admin");
  if ("c2pa" in r && r.c2pa !== null && r.c2pa !== undefined) {
    row(dl, "C2PA", c2paSummary(r.c2pa), "c2pa");
  }
  // The matched code's recorded manifest: provenance found from the pixels, even stripped.
  const rec = r.recovered_manifest;
  if (rec && typeof rec === "object") {
    const when = rec.recorded_at ? `, recorded ${String(rec.recorded_at).slice(0, 10)}` : "";
    const text = `recovered from the registry (p=${formatP(rec.p_value)}${when})`;
    const summary = rec.manifest ? c2paSummary(rec.manifest) : "";
    row(dl, "C2PA", summary ? `${text} · ${summary}` : text, "c2pa c2pa-recovered");
  }
  body.append(dl);
}

function setVerdict(node, kind, text) {
  node.dataset.verdict = kind;
  node.className = `verdict ${kind}`;
  node.textContent = text;
}

function makeCards() {
  const list = $("results");
  list.replaceChildren();
  return state.files.map((file, i) => {
    const card = el("article", "result");
    card.dataset.name = file.name;
    const img = el("img", "thumb");
    img.src = state.urls[i];
    img.alt = "";
    img.addEventListener("error", () => img.replaceWith(el("div", "thumb"))); // not an image
    const head = el("div", "head");
    head.append(el("h3", "name", file.name), el("span", "verdict pending", "Waiting"));
    card.append(img, head, el("div", "body"));
    list.append(card);
    return card;
  });
}

// ----------------------------------------------------------------------------- requests
async function checkOne(file, card, endpoint) {
  const verdict = card.querySelector(".verdict");
  setVerdict(verdict, "pending", "Checking…");
  for (let attempt = 0; ; attempt++) {
    const form = new FormData();
    form.append("images", file, file.name);
    let r;
    try {
      r = await fetch(endpoint, { method: "POST", headers: authHeaders(), body: form });
    } catch (err) {
      renderResult(card, { error: `${file.name}: no answer from the server (${err.message})` });
      return;
    }
    const body = await readJson(r);
    if (r.status === 401) throw new KeyRefused(detailOf(body, r.status));
    if ((r.status === 429 || r.status === 503) && attempt < MAX_RETRIES) {
      const wait = Math.min(60, Number(r.headers.get("Retry-After")) || 1);
      setVerdict(verdict, "pending", `Busy, retrying in ${wait} s…`);
      await sleep(wait * 1000);
      continue;
    }
    if (!r.ok) {
      renderResult(card, { error: `${file.name}: HTTP ${r.status}: ${detailOf(body, r.status)}` });
      return;
    }
    renderResult(card, body.results[0]);
    return;
  }
}

function keyRefused(message) {
  showBanner(`API key refused (401 Unauthorized): ${message}. Check the key and try again.`);
  setKeyStatus("Key refused.", "bad");
  state.owners = null;
  renderRegistry(null);
  for (const v of document.querySelectorAll("#results .verdict.pending")) {
    setVerdict(v, "unchecked", "Not checked");
  }
}

async function run() {
  if (state.running) return;
  hideBanner();
  if (!$("api-key").value.trim()) {
    setKeyStatus("Paste an API key first.", "bad");
    $("api-key").focus();
    return;
  }
  state.running = true;
  $("check").disabled = true;
  // New cards first: no verdict from an earlier run stays on screen under a refused key.
  const files = state.files;
  const cards = files.length ? makeCards() : [];
  try {
    if (!state.kit) await loadHealth();
    setKeyStatus("Checking the key…");
    const who = await checkKey();
    state.owners = who.owners;
    renderRegistry(who.owners);
    const role = who.admin ? "admin: owners and codes shown" : "detect";
    if (!files.length) {
      setKeyStatus(`Key accepted (${role}). Drop images to check them.`, "good");
      return;
    }
    setKeyStatus(`Key accepted (${role}). Checking ${files.length} image(s)…`, "good");
    const endpoint = state.kit && state.kit.num_bits > 0 ? "/v1/attribute" : "/v1/detect";
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const i = next++;
        await checkOne(files[i], cards[i], endpoint);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    setKeyStatus(`Key accepted (${role}). Checked ${files.length} image(s).`, "good");
  } catch (err) {
    if (err instanceof KeyRefused) {
      keyRefused(err.message);
    } else {
      showBanner(err.message);
      setKeyStatus("");
    }
  } finally {
    state.running = false;
    $("check").disabled = false;
  }
  if (state.rerun) {
    state.rerun = false; // images dropped while the last ones were being checked
    run();
  }
}

function addFiles(fileList) {
  const files = [...fileList];
  if (!files.length) return;
  for (const url of state.urls) URL.revokeObjectURL(url);
  state.files = files;
  state.urls = files.map((f) => URL.createObjectURL(f)); // thumbnails
  if (state.running) {
    state.rerun = true;
    return;
  }
  makeCards();
  if ($("api-key").value.trim()) {
    run();
  } else {
    setKeyStatus("Paste an API key, then press Check images.", "bad");
  }
}

function init() {
  const drop = $("drop");
  const input = $("files");
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = ""; // choosing the same file again fires change again
  });
  drop.addEventListener("click", (e) => {
    if (e.target === drop || e.target.tagName === "P") input.click();
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    addFiles(e.dataTransfer.files);
  });
  $("check").addEventListener("click", run);
  $("api-key").addEventListener("keydown", (e) => {
    if (e.key === "Enter") run();
  });
  loadHealth();
}

document.addEventListener("DOMContentLoaded", init);
