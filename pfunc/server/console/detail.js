// One execution, opened: everything its JSON result holds, and "save as scenario".
import { html, useState } from "./preact-htm.js";

export const show = (value) =>
  value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value, null, 2);

export async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || (data.error && data.error.message) || response.statusText);
  return data;
}

// A key-by-key diff of the message before and after the function (nested objects by path).
export function diff(before, after, path = "") {
  const isObject = (v) => v && typeof v === "object" && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((key) => diff(before[key], after[key], path ? `${path}.${key}` : key));
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  if (before === undefined) return [{ path, kind: "added", after }];
  if (after === undefined) return [{ path, kind: "removed", before }];
  return [{ path, kind: "changed", before, after }];
}

// An execution's budget as its report gives it: the combined one (classic), per-kind ones
// (pubnub-2026), or per-kind nulls (unlimited).
export function budgetText(limit) {
  if (typeof limit === "number") return ` of ${limit}`;
  const kinds = Object.entries(limit ?? {}).filter(([, count]) => count !== null);
  return kinds.length ? ` (per kind: ${kinds.map(([kind, count]) => `${kind} ${count}`).join(", ")})` : " (no limit)";
}

const Section = ({ title, children }) => html`<section class="part"><h4>${title}</h4>${children}</section>`;
const Pre = ({ value, cls = "" }) => html`<pre class=${cls}>${show(value)}</pre>`;

function Diff({ before, after }) {
  const changes = diff(before, after);
  if (!changes.length) return html`<p class="dim diff-none">unchanged</p>`;
  return html`<table class="diff">
    ${changes.map(
      (c) => html`<tr class=${"diff-" + c.kind}>
        <td class="mono">${c.path || "(message)"}</td><td>${c.kind}</td>
        <td class="mono">${c.kind !== "added" ? JSON.stringify(c.before) : ""}</td>
        <td class="mono">${c.kind !== "removed" ? JSON.stringify(c.after) : ""}</td>
      </tr>`
    )}
  </table>`;
}

function Tree({ reports }) {
  return html`<ul class="tree">
    ${reports.map(
      (r) => html`<li>
        <span class="mono">${r.verb} → ${r.channel}</span>
        ${r.delivered ? html` <span class="ok">delivered</span>` : ""}
        ${r.dropped ? html` <span class="error">dropped: ${r.dropped}</span>` : ""}
        ${r.stopped_by ? html` <span class="abort">stopped by ${r.stopped_by}</span>` : ""}
        <ul>
          ${r.executions.map(
            (e) => html`<li><b>${e.name || e.function}</b> ${e.event} <span class=${e.outcome}>${e.outcome}</span>
              ${e.triggered ? html`<${Tree} reports=${e.triggered} />` : ""}</li>`
          )}
        </ul>
      </li>`
    )}
  </ul>`;
}

function SaveScenario({ entry }) {
  const [file, setFile] = useState("tests/saved.test.toml");
  const [answer, setAnswer] = useState(null);
  const save = async () => {
    try {
      const saved = await api("/pfunc/console/scenario", {
        method: "POST",
        body: JSON.stringify({ id: entry.id, file }),
      });
      setAnswer({ ok: true, text: `saved to ${saved.file}: "${saved.name}"`, detail: saved.text });
    } catch (error) {
      setAnswer({ ok: false, text: error.message });
    }
  };
  return html`<div class="save">
    <input class="scenario-file" value=${file} onInput=${(e) => setFile(e.target.value)} size="30" />
    <button class="save-scenario" onClick=${save} disabled=${answer && answer.ok}>Save as scenario</button>
    ${answer && html`<p class=${answer.ok ? "ok saved" : "error"}>${answer.text}</p>`}
    ${answer && answer.detail && html`<${Pre} value=${answer.detail} />`}
  </div>`;
}

export function Detail({ entry }) {
  if (!entry) return html`<p class="dim">Pick an execution to see everything it did.</p>`;
  if (entry.type === "request") {
    return html`<div class="detail"><h3>${entry.method} ${entry.path}</h3>
      <p>${entry.what ? `not emulated by pfunc dev: ${entry.what}` : "no function or endpoint answers this path (404)"}</p></div>`;
  }
  const { result, event } = entry;
  const ops = result.operations || {};
  const calls = ops.calls || [];
  const isMessage = event && "message" in event;
  return html`<div class="detail">
    <h3>${result.name || result.function} <span class=${result.outcome}>${result.outcome}</span></h3>
    <p class="dim">${result.event} · ${result.duration_ms} ms · ${new Date(entry.at).toLocaleTimeString()}
      ${result.abort_reason ? html` · abort: <b>${result.abort_reason}</b>` : ""}</p>
    ${entry.id && html`<${SaveScenario} key=${entry.id} entry=${entry} />`}
    ${event && html`<${Section} title="Event as received"><${Pre} value=${event} /><//>`}
    ${isMessage && html`<${Section} title="Message: before → after">
      <${Diff} before=${event.message} after=${result.message} />
      <${Pre} value=${result.message} cls="after" /><//>`}
    ${result.response && html`<${Section} title="HTTP response">
      <p class="mono status">${result.response.status}</p>
      <${Pre} value=${result.response.headers} /><${Pre} value=${result.response.body} /><//>`}
    ${!result.response && entry.status && html`<${Section} title="HTTP response">
      <p class="mono status">${entry.status}</p>
      <p class="dim">answered by pfunc dev: the function ${entry.status === 503 ? "ran out of time" : "failed"}</p><//>`}
    <${Section} title=${`Operations: ${ops.used ?? 0}${budgetText(ops.limit)}${ops.exceeded ? " (budget exceeded)" : ""}`}>
      <table class="calls">${calls.map(
        (c) => html`<tr class=${c.status}><td class="mono">${c.module}.${c.method}</td><td class="mono">${c.key ?? ""}</td>
          <td>${c.status}${c.unawaited ? " (not awaited)" : ""}</td><td>${c.error ?? ""}</td></tr>`
      )}</table><//>
    ${result.logs && result.logs.length > 0 && html`<${Section} title="Console">
      ${result.logs.map((l) => html`<div class=${"log log-" + l.level}><span>${l.level}</span> ${l.text}</div>`)}<//>`}
    ${result.warnings && result.warnings.length > 0 && html`<${Section} title="Warnings">
      ${result.warnings.map((w) => html`<div class="warning">${w}</div>`)}<//>`}
    ${result.error && html`<${Section} title="Error">
      <p class="error">${result.error.type}: ${result.error.message}</p>
      ${result.error.file && html`<p class="mono">at ${result.error.file}:${result.error.line}:${result.error.column}</p>`}
      ${entry.frame && html`<${Pre} value=${entry.frame} cls="frame" />`}
      ${result.error.stack && html`<${Pre} value=${result.error.stack} />`}<//>`}
    ${result.triggered && html`<${Section} title="Publishes it triggered"><${Tree} reports=${result.triggered} /><//>`}
  </div>`;
}
