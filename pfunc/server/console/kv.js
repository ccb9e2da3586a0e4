// The KV store view: items and counters by prefix, paged; set, edit, delete, increment.
// Refreshes when the stream says a function (or another page) changed a key.
import { html, useEffect, useState } from "./preact-htm.js";
import { api } from "./detail.js";

const ttl = (seconds) =>
  seconds >= 86400 ? `${Math.floor(seconds / 86400)} d` : seconds >= 3600 ? `${Math.floor(seconds / 3600)} h`
    : seconds >= 60 ? `${Math.floor(seconds / 60)} min` : `${seconds} s`;

export function KVView({ version }) {
  const [space, setSpace] = useState("items");
  const [prefix, setPrefix] = useState("");
  const [pages, setPages] = useState([""]); // the "after" key of each page shown so far
  const [page, setPage] = useState({ rows: [] });
  const [editing, setEditing] = useState(null);
  const [message, setMessage] = useState(null);
  const after = pages[pages.length - 1];
  const load = () =>
    api(`/pfunc/console/kv?space=${space}&prefix=${encodeURIComponent(prefix)}&after=${encodeURIComponent(after)}`)
      .then((answer) => {
        setPage(answer);
        // A failed load's message goes once a load succeeds (a restarted server, say).
        setMessage((shown) => (shown && shown.loading ? null : shown));
      })
      .catch((e) => setMessage({ error: e.message, loading: true }));
  useEffect(() => { load(); }, [space, prefix, after, version]);
  const change = async (body) => {
    try {
      const answer = await api("/pfunc/console/kv", { method: "POST", body: JSON.stringify(body) });
      setMessage({ ok: `${body.op} ${body.key}: done${answer.warnings.length ? " (" + answer.warnings.join("; ") + ")" : ""}` });
      setEditing(null);
      load();
    } catch (e) {
      setMessage({ error: e.message });
    }
  };
  const save = () => {
    try {
      JSON.parse(editing.value);
    } catch (e) {
      return setMessage({ error: `the value is not JSON: ${e.message}` });
    }
    const minutes = String(editing.ttl).trim() === "" ? null : Number(editing.ttl);
    if (minutes !== null && !(Number.isFinite(minutes) && minutes > 0)) {
      return setMessage({ error: `TTL: ${JSON.stringify(editing.ttl)} is not a number of minutes (leave it empty for the default)` });
    }
    change({ op: "set", key: editing.key, value: editing.value, ttl: minutes });
  };
  const field = (name) => (e) => setEditing({ ...editing, [name]: e.target.value });
  return html`<div class="kv">
    <div class="filters">
      <select class="kv-space" onChange=${(e) => { setSpace(e.target.value); setPages([""]); }}>
        <option value="items">items</option><option value="counters">counters</option></select>
      <input class="kv-prefix" placeholder="key prefix" onInput=${(e) => { setPrefix(e.target.value); setPages([""]); }} />
      <button class="kv-new" onClick=${() => setEditing(space === "items" ? { key: "", value: "{}", ttl: "" } : { key: "", counter: true })}>New</button>
    </div>
    ${message && html`<p class=${message.error ? "error kv-message" : "ok kv-message"}>${message.error || message.ok}</p>`}
    ${editing && html`<div class="card kv-edit">
      <input class="kv-key" placeholder="key" value=${editing.key} onInput=${field("key")}
        readOnly=${editing.existing} title=${editing.existing ? "an item's key: New makes another item" : ""} />
      ${editing.counter
        ? html`<button class="kv-incr-new" onClick=${() => change({ op: "incr", key: editing.key, amount: 1 })}>Increment</button>`
        : html`<textarea class="kv-value" rows="6" value=${editing.value} onInput=${field("value")}></textarea>
          <input class="kv-ttl" placeholder="TTL minutes (default)" value=${editing.ttl} onInput=${field("ttl")} />
          <button class="kv-save" onClick=${save}>Save</button>`}
      <button onClick=${() => setEditing(null)}>Cancel</button>
    </div>`}
    <table class="kv-rows">
      <tr><th>key</th><th>value</th>${space === "items" && html`<th>size</th><th>TTL left</th>`}<th></th></tr>
      ${page.rows.map((row) => html`<tr class="kv-row" data-key=${row.key}>
        <td class="mono">${row.key}</td><td><pre>${row.text}</pre></td>
        ${space === "items" && html`<td>${row.size} B</td><td>${ttl(row.ttl_seconds)}</td>`}
        <td>${space === "items"
          ? html`<button class="kv-edit-button" onClick=${() => setEditing({ key: row.key, existing: true, value: row.text, ttl: String(Math.max(1, Math.ceil(row.ttl_seconds / 60))) })}>Edit</button>`
          : html`<button class="kv-incr" onClick=${() => change({ op: "incr", key: row.key, amount: 1 })}>+1</button>`}
          <button class="kv-delete" onClick=${() => confirm(`Delete ${row.key}? A function reading it finds nothing.`) && change({ op: "delete", key: row.key })}>Delete</button></td>
      </tr>`)}
    </table>
    <div class="pager">
      ${pages.length > 1 && html`<button onClick=${() => setPages(pages.slice(0, -1))}>Previous</button>`}
      ${page.next && html`<button class="kv-next" onClick=${() => setPages([...pages, page.next])}>Next</button>`}
    </div>
  </div>`;
}
