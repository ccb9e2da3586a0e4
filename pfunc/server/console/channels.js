// The Channels view: the page is a PubNub client of the dev server, as an SDK would be:
// it long-polls subscribe v2 for channels and groups (with presence if asked), publishes
// and signals through the REST endpoints, and reads a channel's history.
import { html, useEffect, useRef, useState } from "./preact-htm.js";
import { show } from "./detail.js";

const UUID = "pfunc-console";
const split = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

export function ChannelsView({ keyset }) {
  const { subscribe_key: sub, publish_key: pub } = keyset;
  const [channels, setChannels] = useState("");
  const [groups, setGroups] = useState("");
  const [presence, setPresence] = useState(false);
  const [active, setActive] = useState(null);
  const [seen, setSeen] = useState([]);
  const [target, setTarget] = useState("");
  const [text, setText] = useState('{"text": "hello"}');
  const [history, setHistory] = useState(null);
  const [problem, setProblem] = useState(null); // the last publish, signal or history
  const [subscribeProblem, setSubscribeProblem] = useState(null); // the subscription's own
  const stopper = useRef(null);

  useEffect(() => () => stopper.current && stopper.current.abort(), []);
  const start = () => {
    const names = split(channels).flatMap((c) => (presence ? [c, c + "-pnpres"] : [c]));
    const groupNames = split(groups).flatMap((g) => (presence ? [g, g + "-pnpres"] : [g]));
    // Checked first: a refused change leaves the subscription that runs as it is.
    if (!names.length && !groupNames.length) return setProblem("name a channel or a group");
    if (stopper.current) stopper.current.abort();
    const controller = new AbortController();
    stopper.current = controller;
    setActive({ names, groupNames });
    setProblem(null);
    setSubscribeProblem(null);
    poll(names, groupNames, controller);
  };
  const poll = async (names, groupNames, controller) => {
    let tt = "0", tr = "", failed = false;
    while (!controller.signal.aborted) {
      // After a failure, a handshake (tt=0, answered at once) tells that the server is
      // back; the poll then goes on from where it was, missing nothing kept since.
      const query = new URLSearchParams({ uuid: UUID, tt: failed ? "0" : tt });
      if (tr && !failed) query.set("tr", tr);
      if (groupNames.length) query.set("channel-group", groupNames.join(","));
      const path = `/v2/subscribe/${sub}/${encodeURIComponent(names.join(",") || ",")}/0?${query}`;
      try {
        const response = await fetch(path, { signal: controller.signal });
        const data = await response.json();
        if (!response.ok && response.status < 500) {
          // Refused as written (a name the service refuses): asking again cannot help.
          setActive(null);
          return setSubscribeProblem(`subscribe: ${data.message || response.statusText}`);
        }
        if (!response.ok) throw new Error(data.message || response.statusText);
        setSubscribeProblem(null);
        if (failed) {
          failed = false;
          if (tt !== "0") continue;
        }
        tt = data.t.t;
        tr = String(data.t.r);
        if (data.m.length) setSeen((old) => [...data.m.map(describe), ...old].slice(0, 200));
      } catch (error) {
        if (controller.signal.aborted) return;
        setSubscribeProblem(`subscribe: ${error.message}`);
        failed = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };
  const describe = (m) => ({
    kind: m.c.endsWith("-pnpres") ? "presence" : m.e === 1 ? "signal" : m.e === 4 ? "file" : "message",
    channel: m.c, payload: m.d, timetoken: m.p && m.p.t, publisher: m.i, via: m.b,
  });
  const stop = () => {
    stopper.current && stopper.current.abort();
    setActive(null);
    setSubscribeProblem(null);
  };
  const send = async (verb) => {
    if (!target.trim()) return setProblem(`${verb}: name the channel to ${verb} to`);
    try {
      JSON.parse(text);
    } catch (e) {
      return setProblem(`the message is not JSON: ${e.message}`);
    }
    try {
      const response = await fetch(`/${verb}/${pub}/${sub}/0/${encodeURIComponent(target)}/0/${encodeURIComponent(text)}?uuid=${UUID}`);
      const data = await response.json();
      // A publish's refusal is PubNub's [0, "why", timetoken]: the why is the message.
      const why = Array.isArray(data) ? data[1] : data.message || JSON.stringify(data);
      setProblem(response.ok ? null : `${verb}: ${why}`);
    } catch (error) {
      setProblem(`${verb}: the dev server does not answer (${error.message}); is it running?`);
    }
  };
  const loadHistory = async () => {
    if (!target.trim()) return setProblem("history: name the channel to read");
    try {
      const response = await fetch(`/v3/history/sub-key/${sub}/channel/${encodeURIComponent(target)}?max=25&include_meta=true`);
      const data = await response.json();
      setHistory(response.ok ? (data.channels || {})[target] || [] : []);
      if (!response.ok) setProblem(`history: ${data.message || response.statusText}`);
    } catch (error) {
      setProblem(`history: the dev server does not answer (${error.message}); is it running?`);
    }
  };
  return html`<div class="split">
    <div class="list">
      <h4>Subscribe</h4>
      <input class="sub-channels" placeholder="channels, comma-separated (wildcards: chat.*)" value=${channels} onInput=${(e) => setChannels(e.target.value)} />
      <input class="sub-groups" placeholder="channel groups" value=${groups} onInput=${(e) => setGroups(e.target.value)} />
      <label><input type="checkbox" checked=${presence} onChange=${(e) => setPresence(e.target.checked)} /> presence</label>
      <button class="subscribe" onClick=${start}>Subscribe</button>
      ${active && html`<button onClick=${stop}>Stop</button> <span class="ok subscribed">listening to ${[...active.names, ...active.groupNames].join(", ")}</span>`}
      ${subscribeProblem && html`<p class="error subscribe-problem">${subscribeProblem}</p>`}
      <h4>Publish, signal, history</h4>
      <input class="pub-channel" placeholder="channel" value=${target} onInput=${(e) => setTarget(e.target.value)} />
      <textarea class="pub-message" rows="4" value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
      <button class="publish" onClick=${() => send("publish")}>Publish</button>
      <button class="signal" onClick=${() => send("signal")}>Signal</button>
      <button class="history" onClick=${loadHistory}>History</button>
      ${problem && html`<p class="error">${problem}</p>`}
      ${history && html`<table class="history-rows">${history.map((h) => html`<tr><td class="mono dim">${h.timetoken}</td><td><pre>${show(h.message)}</pre></td></tr>`)}</table>`}
    </div>
    <div class="pane">
      <h4>Received</h4>
      <table class="deliveries">${seen.map((m) => html`<tr class=${"delivery " + m.kind}>
        <td>${m.kind}</td><td class="mono">${m.channel}</td><td><pre>${show(m.payload)}</pre></td><td class="dim">${m.publisher || ""}</td></tr>`)}</table>
    </div>
  </div>`;
}
