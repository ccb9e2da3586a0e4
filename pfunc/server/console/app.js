// The pfunc dev console: the shell, the live stream, and the Functions, Executions and
// Run views. KV and Channels are in kv.js and channels.js. No build step: Preact + htm.
import { html, render, useEffect, useMemo, useRef, useState } from "./preact-htm.js";
import { Detail, api, show } from "./detail.js";
import { KVView } from "./kv.js";
import { ChannelsView } from "./channels.js";

const params = new URLSearchParams(location.search);
const asked = parseInt(params.get("keep") || "", 10);
const KEEP = Number.isFinite(asked) && asked > 0 ? asked : 1000; // entries the page keeps
// ...and at most about this much of their text, as the server keeps 64 MiB: 1,000 entries
// that each logged a megabyte held gigabytes in a tab (`?keep_text=N` characters).
const askedText = parseInt(params.get("keep_text") || "", 10);
const KEEP_TEXT = Number.isFinite(askedText) && askedText > 0 ? askedText : 64 << 20;
const textOf = new WeakMap(); // entry -> the length of the text it came as

// The newest entries of `all` within KEEP and KEEP_TEXT (the newest one always).
function newest(all) {
  let text = 0;
  let first = all.length;
  while (first > 0 && all.length - first < KEEP) {
    text += textOf.get(all[first - 1]) || 0;
    if (text > KEEP_TEXT && first < all.length) break;
    first -= 1;
  }
  return first > 0 ? all.slice(first) : all;
}
const SHOWN = 300; // rows rendered at once; the rest are counted
const VIEWS = ["functions", "executions", "run", "kv", "channels"];

// The stream: entries arrive in bursts (10,000 a second is fine); they are buffered and
// applied at most every 100 ms so the page stays responsive.
function useStream() {
  const [entries, setEntries] = useState([]);
  const [status, setStatus] = useState({ connected: false, dropped: 0, kv: 0, reloads: 0 });
  useEffect(() => {
    let pending = [];
    let timer = null;
    const flush = () => {
      timer = null;
      const batch = pending;
      pending = [];
      setEntries((old) => {
        // Ids only grow: anything at or below the newest kept was already seen.
        const last = old.length ? old[old.length - 1].id : 0;
        const fresh = batch.filter((e) => e.id > last);
        return newest(old.concat(fresh));
      });
    };
    const add = (list) => {
      pending.push(...list);
      if (!timer) timer = setTimeout(flush, 100);
    };
    const source = new EventSource("/pfunc/console/stream");
    // Opened again after an error: the server may have restarted with other functions.
    source.addEventListener("open", () =>
      setStatus((s) => ({
        ...s, connected: true, refused: null, reloads: s.reloads + (s.opened ? 1 : 0), opened: true,
      }))
    );
    source.addEventListener("error", () => setStatus((s) => ({ ...s, connected: false })));
    // Too many pages open: the server says so and closes; the page tries again later.
    source.addEventListener("refused", (e) =>
      setStatus((s) => ({ ...s, connected: false, refused: JSON.parse(e.data) }))
    );
    source.addEventListener("backlog", (e) => {
      // The server's kept entries replace those the page has from the same ids on; older
      // ones (a restarted server has none of them) stay, so an open execution stays put.
      const list = JSON.parse(e.data);
      for (const entry of list) textOf.set(entry, JSON.stringify(entry).length);
      const first = list.length ? list[0].id : Infinity;
      setEntries((old) => old.filter((entry) => entry.id < first));
      pending = list.slice(-KEEP);
      flush();
    });
    source.addEventListener("execution", (e) => {
      const entry = JSON.parse(e.data);
      textOf.set(entry, e.data.length);
      add([entry]);
    });
    source.addEventListener("dropped", (e) =>
      setStatus((s) => ({ ...s, dropped: s.dropped + Number(e.data) }))
    );
    // A burst of KV writes is one refresh of the KV view (and one render), not one each.
    let kvTimer = null;
    source.addEventListener("kv", () => {
      if (kvTimer) return;
      kvTimer = setTimeout(() => {
        kvTimer = null;
        setStatus((s) => ({ ...s, kv: s.kv + 1 }));
      }, 500);
    });
    source.addEventListener("reload", () => setStatus((s) => ({ ...s, reloads: s.reloads + 1 })));
    return () => {
      source.close();
      clearTimeout(kvTimer);
    };
  }, []);
  return [entries, status];
}

const clock = (ms) => new Date(ms).toLocaleTimeString();

function FunctionsView({ functions, entries, open, projectError }) {
  return html`${projectError && html`<p class="error project-error">${projectError} (the functions below are
      the last pfunc.toml that loaded; they serve until it is fixed)</p>`}
    <div class="functions">
    ${functions.map((f) => {
      const mine = entries.filter((e) => e.result && e.result.name === f.name).slice(-5).reverse();
      return html`<div class="card function" data-name=${f.name}>
        <h3>${f.name} <span class="dim">${f.event}</span>
          <span class=${"state " + f.state}>${f.state === "failed" ? "failed to load" : f.state}</span></h3>
        <p class="mono dim">${f.file} · ${f.url || (f.interval ? `every ${f.interval} s` : (f.channels || []).join(", "))}</p>
        ${f.state === "loaded" && f.loaded_at && html`<p class="dim load-time">loaded at ${clock(f.loaded_at)}</p>`}
        ${f.state === "failed" && html`<p class="dim load-time">failed to load at ${clock(f.failed_at)}${
          !f.serving ? "" : f.loaded_at ? `; the version loaded at ${clock(f.loaded_at)} keeps serving`
            : "; the last version that loaded keeps serving"}</p>`}
        ${f.state === "failed" && html`<p class="error">${f.error_type}: ${f.error}</p>`}
        ${f.frame && html`<pre class="frame">${f.frame}</pre>`}
        <ul class="recent">${mine.map(
          (e) => html`<li><a href="#executions" onClick=${() => open(e.id)}>
            ${new Date(e.at).toLocaleTimeString()} <span class=${e.result.outcome}>${e.result.outcome}</span>
            ${e.result.channel || ""}</a></li>`
        )}</ul>
      </div>`;
    })}
  </div>`;
}

function ExecutionsView({ entries, functions, selected, setSelected }) {
  const [filter, setFilter] = useState({ fn: "", kind: "", outcome: "", channel: "" });
  const set = (key) => (e) => setFilter({ ...filter, [key]: e.target.value });
  const matching = useMemo(
    () =>
      entries.filter((e) => {
        const r = e.result;
        if (!r) return !filter.fn && !filter.kind && !filter.outcome && !filter.channel;
        return (
          (!filter.fn || r.name === filter.fn) &&
          (!filter.kind || r.event === filter.kind) &&
          (!filter.outcome || r.outcome === filter.outcome) &&
          (!filter.channel || (r.channel || "").includes(filter.channel))
        );
      }),
    [entries, filter]
  );
  const rows = matching.slice(-SHOWN).reverse();
  const entry = entries.find((e) => e.id === selected);
  const kinds = [...new Set(functions.map((f) => f.event))];
  return html`<div class="split">
    <div class="list">
      <div class="filters">
        <select class="filter-function" onChange=${set("fn")}><option value="">all functions</option>
          ${functions.map((f) => html`<option value=${f.name}>${f.name}</option>`)}</select>
        <select class="filter-kind" onChange=${set("kind")}><option value="">all kinds</option>${kinds.map((k) => html`<option value=${k}>${k}</option>`)}</select>
        <select class="filter-outcome" onChange=${set("outcome")}><option value="">all outcomes</option>
          ${["ok", "abort", "response", "error"].map((o) => html`<option value=${o}>${o}</option>`)}</select>
        <input placeholder="channel" onInput=${set("channel")} size="10" />
      </div>
      <p class="dim count">${matching.length} of ${entries.length} kept${matching.length > SHOWN ? ` (newest ${SHOWN} shown)` : ""}</p>
      <table class="executions"><tbody>
        ${rows.map((e) => {
          const r = e.result;
          return html`<tr key=${e.id} class=${"execution" + (e.id === selected ? " selected" : "")} data-id=${e.id}
              onClick=${() => setSelected(e.id)}>
            <td class="dim">${new Date(e.at).toLocaleTimeString()}</td>
            ${r
              ? html`<td>${r.name || r.function}</td><td class="dim">${r.event}</td>
                <td class="mono">${r.channel || (e.status ?? "")}</td>
                <td class=${r.outcome}>${r.outcome}</td><td class="dim">${r.duration_ms} ms</td>`
              : html`<td colspan="3" class="mono">${e.method} ${e.path}</td><td class="abort">${e.what ? "not emulated" : e.status}</td><td></td>`}
          </tr>`;
        })}
      </tbody></table>
    </div>
    <div class="pane"><${Detail} entry=${entry} /></div>
  </div>`;
}

// A channel the function is bound to: its default, or one its wildcard covers.
const channelOf = (f) => {
  const wildcard = (f.channels || []).find((c) => c.endsWith(".*"));
  return f.default_channel === "default" && wildcard ? wildcard.slice(0, -1) + "example" : f.default_channel;
};

function template(f) {
  if (!f) return "{}";
  if (f.family === "request") return show({ method: "POST", path: "/", query: {}, headers: { "content-type": "application/json" }, body: "{}" });
  if (f.family === "interval") return "{}";
  if (f.trigger === "presence") return show({ action: "join", uuid: "user-1", occupancy: 1, channel: channelOf(f) });
  // A chat message from a user: what the common message handlers read (the demo's rate
  // limiter and de-duplicator abort a message without a userId).
  return show({ message: { userId: "pfunc-console", text: "hello" }, channel: channelOf(f) });
}

function RunView({ functions, entries }) {
  const [name, setName] = useState("");
  const [text, setText] = useState("{}");
  const [answer, setAnswer] = useState(null);
  // The run as the Executions list has it (the event as the handler received it, and
  // Save as scenario), once the stream brings it: the same result, to the character.
  useEffect(() => {
    if (!answer || !answer.text || answer.entry.id) return;
    const { duration_ms: took, function: file } = answer.entry.result;
    const found = entries.findLast(
      (e) => e.result && e.result.duration_ms === took && e.result.function === file &&
        JSON.stringify(e.result) === answer.text
    );
    if (found) setAnswer({ entry: found });
  }, [entries, answer]);
  const area = useRef(null);
  const fn = functions.find((f) => f.name === name);
  // The first function, and again when the one chosen is gone from pfunc.toml.
  useEffect(() => {
    if (functions.length && !functions.some((f) => f.name === name)) pick(functions[0].name);
  }, [functions]);
  const pick = (chosen) => {
    setName(chosen);
    setText(template(functions.find((f) => f.name === chosen)));
  };
  const run = async () => {
    try {
      JSON.parse(text);
    } catch (error) {
      return setAnswer({ error: `the event is not JSON: ${error.message}` });
    }
    try {
      const result = await api(`/pfunc/run/${encodeURIComponent(name)}`, { method: "POST", body: text });
      // The event as sent (the builder's defaults aside), so the message diff shows.
      const spec = JSON.parse(text || "{}");
      // (A presence event's message is built from its fields: no diff until the stream's.)
      const sentMessage = fn && fn.family === "message" && fn.trigger !== "presence";
      const event = sentMessage ? { kind: fn.event, message: {}, ...spec } : { kind: fn && fn.event, ...spec };
      setAnswer({ entry: { type: "execution", at: Date.now(), result, event }, text: JSON.stringify(result) });
    } catch (error) {
      setAnswer({ error: error.message });
    }
  };
  const keys = (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); } };
  return html`<div class="split">
    <div class="list">
      <select class="run-function" value=${name} onChange=${(e) => pick(e.target.value)}>
        ${functions.map((f) => html`<option value=${f.name}>${f.name} (${f.event})</option>`)}</select>
      <button onClick=${() => setText(template(fn))}>Template</button>
      <textarea ref=${area} class="event" rows="14" value=${text} onInput=${(e) => setText(e.target.value)} onKeyDown=${keys}></textarea>
      <button class="run" onClick=${run}>Run</button> <span class="dim">Ctrl+Enter runs it again</span>
      ${answer && answer.error && html`<p class="error">${answer.error}</p>`}
    </div>
    <div class="pane run-result">${answer && answer.entry && html`<${Detail} entry=${answer.entry} />`}</div>
  </div>`;
}

function App() {
  const [view, setView] = useState(VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "functions");
  const [entries, status] = useStream();
  const [functions, setFunctions] = useState([]);
  const [projectError, setProjectError] = useState(null);
  const [keyset, setKeyset] = useState(null);
  const [selected, setSelected] = useState(null);
  useEffect(() => {
    api("/pfunc/console/functions").then((d) => {
      setFunctions(d.functions);
      setKeyset(d.keyset);
      setProjectError(d.project_error);
    });
  }, [status.reloads]);
  useEffect(() => {
    const onHash = () => VIEWS.includes(location.hash.slice(1)) && setView(location.hash.slice(1));
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const open = (id) => { setSelected(id); setView("executions"); };
  return html`<header>
      <b>pfunc dev</b>
      <nav>${VIEWS.map((v) => html`<a href=${"#" + v} class=${"tab-" + v + (v === view ? " active" : "")}>${v === "kv" ? "KV store" : v[0].toUpperCase() + v.slice(1)}</a>`)}</nav>
      <span class=${status.connected ? "ok live" : "error live"} title=${status.connected ? "" : status.refused || ""}>${status.connected ? "live" : status.refused ? "too many pages open" : "reconnecting"}</span>
      ${status.dropped > 0 && html`<span class="abort">${status.dropped} skipped (page behind)</span>`}
    </header>
    <main class=${"view-" + view}>
      ${view === "functions" && html`<${FunctionsView} functions=${functions} entries=${entries} open=${open} projectError=${projectError} />`}
      ${view === "executions" && html`<${ExecutionsView} entries=${entries} functions=${functions} selected=${selected} setSelected=${setSelected} />`}
      ${view === "run" && html`<${RunView} functions=${functions} entries=${entries} />`}
      ${view === "kv" && html`<${KVView} version=${status.kv} />`}
      ${/* Kept mounted, only hidden, while another view shows: its subscription and what it
           received go on (a view left is otherwise gone, subscription and all). */ ""}
      ${keyset && html`<div class="view-channels" hidden=${view !== "channels"}><${ChannelsView} keyset=${keyset} /></div>`}
    </main>`;
}

const root = document.getElementById("app");
root.textContent = ""; // "Loading the pfunc console…" until now
render(html`<${App} />`, root);
