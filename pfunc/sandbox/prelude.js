// pfunc sandbox prelude: evaluated once per QuickJS context, before the handler module.
//
// Host calls never call into Python directly: the binding runs some of a handler's code
// (a thrown value's toString, while it words an exception) without setting Python aside,
// and a call into Python from there takes the process down. Each call queues [id, module,
// method, args] and returns a Promise; Python drains the queue between slices of
// JavaScript, performs the calls, and settles the Promises by id.
//
// Every function here is named __pfunc_* so that pfunc can drop these frames from
// stack traces and show only the handler's own lines.

// The handler module's `export default` is rewritten to assign __pfunc_m.d: a member
// assignment, so the handler keeps its own name (or none) in stack traces.
var __pfunc_m = { d: undefined };
var require;
var console;

(function __pfunc_init(RealDate) {
  "use strict";

  // pfunc's own code uses the JSON functions as they were before any handler ran: a
  // handler that replaces JSON.stringify cannot change what pfunc sends to the host.
  const __pfunc_stringify = JSON.stringify;
  const __pfunc_parse = JSON.parse;
  const __pfunc_Error = Error; // the engine's own: a handler may replace the global
  const __pfunc_evalScript = eval; // for the built-ins, below: the engine's own too
  const __pfunc_describe = Object.getOwnPropertyDescriptor;
  const __pfunc_calleeOf = __pfunc_calleeReader.callee; // callee.js, evaluated just before
  const __pfunc_callOf = __pfunc_calleeReader.callOf;
  const __pfunc_define = Object.defineProperty;
  const __pfunc_apply = Reflect.apply;
  const __pfunc_InternalError = InternalError;
  const __pfunc_prototypeOf = Object.getPrototypeOf;
  const __pfunc_stringValue = String.prototype.valueOf;
  const objectPrototype = Object.prototype;
  const arrayPrototype = Array.prototype;

  // pfunc's own envelopes (the report, the call queue, the load state, the tape) are
  // written as JSON without a toJSON a handler put on every object or array, even in its
  // top-level code: the handler's own values (messages, call arguments) keep theirs, as
  // they are written by JSON.stringify where the handler calls it.
  function __pfunc_envelope(value) {
    if (objectPrototype.toJSON === undefined && arrayPrototype.toJSON === undefined) {
      return __pfunc_stringify(value);
    }
    const objects = __pfunc_setAside(objectPrototype);
    const arrays = __pfunc_setAside(arrayPrototype);
    try {
      return __pfunc_stringify(value);
    } finally {
      if (arrays !== undefined) __pfunc_define(arrayPrototype, "toJSON", arrays);
      if (objects !== undefined) __pfunc_define(objectPrototype, "toJSON", objects);
    }
  }

  // The prototype's own toJSON, taken off it (if it can be) to be put back.
  function __pfunc_setAside(prototype) {
    const own = __pfunc_describe(prototype, "toJSON");
    if (own === undefined || !own.configurable) return undefined;
    delete prototype.toJSON;
    return own;
  }
  const ownCodeLine = __pfunc_ownCodeLine; // a handler may assign the global

  const queue = []; // host calls not yet drained by Python
  const waiting = new Map(); // call id -> {resolve, reject, site}
  let nextCallId = 1;
  let fixedNowMs = null; // the fixed execution clock, or null for real time
  let current = null; // the execution in progress
  const loadLogs = []; // console lines from the module's top-level code
  const load = { done: false, error: null };

  // --- the execution clock -----------------------------------------------------

  function __pfunc_now() {
    return fixedNowMs === null ? __pfunc_tapedNow() : fixedNowMs;
  }

  function __pfunc_realNow() { return RealDate.now(); }

  function __pfunc_livePerformanceNow() {
    const tape = current === null ? null : current.tape;
    return realPerformanceNow() + (tape === null ? 0 : tape.perfShift);
  }

  // In line on pfunc dev, an execution records the clock and randomness it reads, so that
  // if the in-line guard stops it, the attempt that starts again on a thread reads the
  // same values (then live ones) and makes the same calls as far as the first got.
  // Date.now() is kept as runs of one value (a wait on the clock reads it thousands of
  // times a millisecond), performance.now() and Math.random() value by value, at most
  // TAPE_MAX runs or values, as the tape is serialised in one engine call (a few
  // milliseconds at most); past them Math.random() draws from a generator of the
  // execution's own, whose starting state the tape keeps (see __pfunc_tapedRandom).
  const TAPE_MAX = 20000;
  const engineRandom = Math.random; // the engine's own
  let seeded = null; // the seeded generator's state (tests), or null

  function __pfunc_tapedNow() {
    const tape = current === null ? null : current.tape;
    if (tape === null) return __pfunc_realNow();
    const replay = tape.replay;
    if (replay !== null && replay.nowAt < replay.now.length) {
      const value = replay.now[replay.nowAt];
      if (++replay.nowUsed >= replay.now[replay.nowAt + 1]) {
        replay.nowAt += 2;
        replay.nowUsed = 0;
      }
      return value;
    }
    const value = __pfunc_realNow();
    const runs = tape.record === null ? null : tape.record.now;
    if (runs !== null) {
      if (runs.length > 0 && runs[runs.length - 2] === value) runs[runs.length - 1] += 1;
      else if (runs.length < 2 * TAPE_MAX) runs.push(value, 1);
    }
    return value;
  }

  function __pfunc_tapedPerf() {
    const tape = current === null ? null : current.tape;
    if (tape === null) return __pfunc_livePerformanceNow();
    const replay = tape.replay;
    if (replay !== null && replay.perfAt < replay.perf.length) return replay.perf[replay.perfAt++];
    const value = __pfunc_livePerformanceNow();
    const record = tape.record;
    if (record !== null) {
      if (record.perf.length < TAPE_MAX) record.perf.push(value);
      else record.perfDropped = true; // a replay that reads on reads live values
    }
    return value;
  }

  function __pfunc_newTape(event) {
    if (!event.recordTape && !event.tape) return null;
    const given = event.tape || null;
    // Math.random() past the values a tape keeps: a generator of the execution's own,
    // from a recorded state (read again) or a new one (recorded).
    let generator = null;
    if (given !== null && Array.isArray(given.randomState) && given.randomState.length === 4) {
      generator = { state: given.randomState.map(function __pfunc_word(n) { return n >>> 0; }) };
    } else if (event.recordTape) {
      const state = [];
      for (let i = 0; i < 4; i++) state.push((engineRandom() * 4294967296) >>> 0);
      generator = { state: state };
    }
    return {
      record: event.recordTape
        ? {
          now: [],
          perf: [],
          perfDropped: false,
          random: [],
          randomState: generator.state.slice(),
          perfOrigin: realPerformance.timeOrigin,
        }
        : null,
      replay: given !== null
        ? {
          now: Array.isArray(given.now) ? given.now : [], nowAt: 0, nowUsed: 0,
          perf: Array.isArray(given.perf) ? given.perf : [], perfAt: 0,
          random: Array.isArray(given.random) ? given.random : [], randomAt: 0,
        }
        : null,
      generator: generator,
      // performance.now() counts from its context's start: live values in a new context
      // are moved to the first one's origin, so that they go on from the replayed ones.
      perfShift: given !== null && typeof given.perfOrigin === "number"
        ? realPerformance.timeOrigin - given.perfOrigin
        : 0,
    };
  }

  function __pfunc_readTape() {
    return __pfunc_envelope(current === null || current.tape === null ? null : current.tape.record);
  }

  function Date(...args) {
    if (!new.target) return new RealDate(__pfunc_now()).toString();
    return args.length === 0 ? new RealDate(__pfunc_now()) : new RealDate(...args);
  }
  Date.prototype = RealDate.prototype;
  Date.now = function now() {
    return __pfunc_now();
  };
  Date.parse = RealDate.parse;
  Date.UTC = RealDate.UTC;
  Object.defineProperty(RealDate.prototype, "constructor", { value: Date, writable: true });
  globalThis.Date = Date;

  // performance.now() follows the execution clock too: under a fixed clock (--now,
  // scenarios) it moves only when that clock moves, as Date.now() does.
  // (QuickJS's performance.now is read-only: the global object is replaced.)
  const realPerformance = globalThis.performance;
  const realPerformanceNow = realPerformance.now.bind(realPerformance);
  let performanceOrigin = null; // fixed-clock ms at which performance.now() read `base`
  let performanceBase = 0;
  globalThis.performance = {
    // In milliseconds since the epoch, as in V8 (QuickJS counts from its own clock's start).
    timeOrigin: RealDate.now() - realPerformanceNow(),
    now: function now() {
      if (fixedNowMs === null) return __pfunc_tapedPerf();
      if (performanceOrigin === null) {
        performanceOrigin = fixedNowMs;
        performanceBase = realPerformanceNow();
      }
      return performanceBase + (fixedNowMs - performanceOrigin);
    },
  };

  // --- console -------------------------------------------------------------------

  function __pfunc_format(value) {
    try {
      return __pfunc_formatted(value);
    } catch (unreadable) { // a Proxy whose traps throw: logging it never fails the handler
      return "[an object that cannot be read]";
    }
  }

  // A String object's text (pfunc's JSON-object request.body is one, where production
  // gives a primitive string), or undefined for any other value.
  function __pfunc_textOf(value) {
    if (typeof value === "string") return value;
    if (!(value instanceof String)) return undefined;
    try {
      return __pfunc_stringValue.call(value);
    } catch (notAString) { // an object made with String.prototype as its prototype
      return undefined;
    }
  }

  function __pfunc_formatted(value) {
    const text = __pfunc_textOf(value);
    if (text !== undefined) return text;
    if (value instanceof Error) return (value.name || "Error") + ": " + value.message;
    if (value === undefined) return "undefined";
    if (typeof value === "function") return "[Function " + (value.name || "anonymous") + "]";
    if (typeof value === "bigint") return String(value) + "n";
    if (typeof value === "symbol") return value.toString();
    if (typeof value === "number" && !Number.isFinite(value)) return String(value);
    try {
      const text = __pfunc_stringify(value);
      return text === undefined ? String(value) : text;
    } catch (error) {
      try {
        return String(value);
      } catch (unreadable) { // its own toString (or a getter) throws: say so, not fail
        return "[an object whose toString throws]";
      }
    }
  }

  // Console output an execution keeps, and a line's own weight (pfunc/sandbox's, for
  // both languages): past it lines are counted, not kept.
  const CONSOLE_BUDGET = __pfunc_consoleBudget;
  const LINE_COST = __pfunc_consoleLineCost;
  const consoleUse = { kept: 0, dropped: 0 }; // the module's top-level code's, then each execution's

  function __pfunc_log(level, args) {
    const use = current ? current.console : consoleUse;
    const text = Array.prototype.map.call(args, __pfunc_format).join(" ");
    const cost = text.length + LINE_COST;
    if (use.kept + cost > CONSOLE_BUDGET) {
      use.dropped += 1;
      return;
    }
    use.kept += cost;
    const entry = { level: level, text: text, time: new RealDate(__pfunc_now()).toISOString() };
    (current ? current.logs : loadLogs).push(entry);
  }

  console = {
    log: function __pfunc_console_log(...args) { __pfunc_log("log", args); },
    info: function __pfunc_console_info(...args) { __pfunc_log("info", args); },
    warn: function __pfunc_console_warn(...args) { __pfunc_log("warn", args); },
    error: function __pfunc_console_error(...args) { __pfunc_log("error", args); },
    debug: function __pfunc_console_debug(...args) { __pfunc_log("debug", args); },
  };

  // --- stacks --------------------------------------------------------------------
  //
  // Stacks as V8 writes them ("TypeError: msg\n    at fn (file:line:col)"), naming the
  // handler's file and never pfunc's own frames, and `stack` not enumerable, so handler
  // code that logs or serialises an error sees what it would see in production. QuickJS
  // calls this when an error is made, so it also words a terse engine message as V8 does.

  const handler = { file: "handler.js", lines: [] };

  function __pfunc_setHandler(file, source) {
    handler.file = file;
    handler.lines = String(source).split("\n");
  }

  function __pfunc_ownFrame(site) {
    const name = site.getFunctionName() || "";
    return name.indexOf("__pfunc") === 0 || name === "<eval>" ||
      (site.getLineNumber() || 0) >= ownCodeLine;
  }

  const TERSE = { "not a function": " is not a function", "not a constructor": " is not a constructor" };
  // QuickJS's wording of a property access on null or undefined, as V8 words it: the
  // message a handler logs or sends is the one production would give.
  const V8_WORDING = [
    [/^cannot read property '(.*)' of (null|undefined)$/, "Cannot read properties of $2 (reading '$1')"],
    [/^cannot set property '(.*)' of (null|undefined)$/, "Cannot set properties of $2 (setting '$1')"],
  ];

  let capturingSite = false; // a host call's site: kept raw, worded only if the call fails

  // A handler frame's column in characters (UTF-16 units, as V8 and the source count
  // them): QuickJS counts UTF-8 bytes, so "é" earlier on the line moved it right. Each
  // line's non-ASCII characters are tabled once (a minified line of 180 KB is asked about
  // at every error), and a column is found by halving; plain loops and arrays only (a
  // handler may have replaced Map or RegExp methods), and never a throw: the engine's
  // column stands then.
  let columnTables = null;
  let columnTablesOf = null; // the handler.lines the tables are about
  function __pfunc_column(site) {
    const bytes = site.getColumnNumber();
    try {
      const line = site.getLineNumber() - 1;
      const text = handler.lines[line - 1];
      if (text === undefined) return bytes;
      if (columnTablesOf !== handler.lines) {
        columnTables = Object.create(null);
        columnTablesOf = handler.lines;
      }
      let table = columnTables[line];
      if (table === undefined) table = columnTables[line] = __pfunc_columnTable(text);
      if (table === null) return bytes; // ASCII only
      let low = 0, high = table.at.length; // non-ASCII characters starting before the column
      while (low < high) {
        const middle = (low + high) >> 1;
        if (table.at[middle] < bytes - 1) low = middle + 1;
        else high = middle;
      }
      return low === 0 ? bytes : bytes - table.surplus[low - 1];
    } catch (error) {
      return bytes;
    }
  }

  // Where a line's non-ASCII characters start (in bytes), and how many bytes more than
  // UTF-16 units the line holds up to and with each; null when there are none.
  function __pfunc_columnTable(text) {
    const at = [], surplus = [];
    let offset = 0, more = 0;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code < 0x80) {
        offset++;
        continue;
      }
      const pair = code >= 0xd800 && code < 0xdc00;
      const size = code < 0x800 ? 2 : pair ? 4 : 3;
      more += size - (pair ? 2 : 1);
      at[at.length] = offset;
      surplus[surplus.length] = more;
      offset += size;
      if (pair) i++; // the pair's second unit: one character, four bytes
    }
    return at.length ? { at: at, surplus: surplus } : null;
  }

  // A read of a property of null or undefined, placed at that property as V8 places it
  // (request.message.user.name: at name), where QuickJS places the chain's start (which
  // reads as if `request` were undefined). Null when the line does not show it.
  function __pfunc_propertyAt(message, site) {
    try {
      const named = /\(reading '([^']*)'\)$/.exec(message); // (a write V8 places at its =)
      if (!named || !/^[A-Za-z_$][\w$]*$/.test(named[1])) return null;
      const line = site.getLineNumber() - 1;
      const text = handler.lines[line - 1];
      if (text === undefined) return null;
      const from = __pfunc_column(site) - 1;
      for (let at = text.indexOf("." + named[1], from); at >= 0 && at - from < 300;
        at = text.indexOf("." + named[1], at + 1)) {
        const after = text[at + 1 + named[1].length];
        if (after === undefined || !/[\w$]/.test(after)) return { line: line, column: at + 2 };
      }
    } catch (error) {
      // a built-in the handler replaced: the engine's place stands
    }
    return null;
  }

  // `hostMethod`: the site of a host call that failed (its method's name), placed at
  // that call as V8 places a failed call, not where QuickJS's column fell.
  function __pfunc_prepareStack(error, sites, hostMethod) {
    if (capturingSite) return sites;
    try {
      return __pfunc_writeStack(error, sites, hostMethod);
    } catch (failure) {
      // Out of memory while writing it (the engine's own error for the handler's
      // allocation is what counts, not a second one from here): no stack.
      return undefined;
    }
  }

  function __pfunc_writeStack(error, sites, hostMethod) {
    let kept = sites;
    // A JSON.parse SyntaxError's first frame is a position in the JSON text, not a file.
    if (sites.length > 1 && !sites[0].getFunctionName() && sites[1].isNative() &&
        sites[1].getFunctionName() === "parse") {
      kept = sites.slice(1);
    }
    const thrownAt = kept[0]; // where the engine raised it: the handler's code, or pfunc's
    kept = kept.filter(function __pfunc_handlerFrame(site) { return !__pfunc_ownFrame(site); });
    const top = kept.find(function __pfunc_sourceFrame(site) { return !site.isNative(); });
    // Worded from the handler's source only when the handler's own call failed (not a
    // call inside pfunc's side, e.g. on a Promise the handler replaced).
    let callee = null; // placed as V8 places it: the top frame points at it
    if (error instanceof TypeError && TERSE[error.message] && top && top === thrownAt) {
      callee = __pfunc_calleeOf(handler.lines, top.getLineNumber() - 1, __pfunc_column(top),
        error.message === "not a constructor");
      if (callee) {
        error.message = callee.expression +
          TERSE[callee.constructed ? "not a constructor" : error.message];
      }
    } else if (hostMethod && top) {
      callee = __pfunc_callOf(handler.lines, top.getLineNumber() - 1, __pfunc_column(top),
        hostMethod);
    }
    if (error instanceof TypeError && typeof error.message === "string") {
      for (const [quickjs, v8] of V8_WORDING) error.message = error.message.replace(quickjs, v8);
      if (!callee && top && top === thrownAt) callee = __pfunc_propertyAt(error.message, top);
    }
    const frames = kept.map(function __pfunc_frame(site) {
      const name = site.getFunctionName();
      if (site.isNative()) return "    at " + (name || "<anonymous>") + " (native)";
      // The module is evaluated one line down (source.py, prepare_module).
      const where = handler.file + ":" + (site === top && callee ? callee.line + ":" + callee.column
        : (site.getLineNumber() - 1) + ":" + __pfunc_column(site));
      return "    at " + (name ? name + " (" + where + ")" : where);
    });
    const message = String(error.message === undefined ? "" : error.message);
    const head = (error.name || "Error") + (message ? ": " + message : "");
    return [head].concat(frames).join("\n");
  }

  // Not enumerable, as in V8: JSON.stringify(error) shows neither stack nor code.
  function __pfunc_hide(error, name, value) {
    Object.defineProperty(error, name, { value: value, enumerable: false, writable: true, configurable: true });
  }

  // A handler may set Error.prepareStackTrace (V8 calls it so), but never for the engine's
  // own stops: QuickJS calls it as it makes the time limit's error, and a handler's could
  // give that error a Symbol.toPrimitive of its own, run where the binding words it with
  // no limit running (see below). A handler's is kept aside; a new scenario's context
  // check counts one set as a change (__pfunc_firstDifference).
  let handlersPrepare;
  function __pfunc_prepareDispatch(error, sites) {
    if (typeof handlersPrepare !== "function" || __pfunc_isInternalError(error)) {
      return __pfunc_prepareStack(error, sites); // (V8's own trace, for a non-function)
    }
    return __pfunc_apply(handlersPrepare, Error, [error, sites]);
  }
  // QuickJS keeps the function its own setter was given: the dispatcher, for good.
  __pfunc_apply(__pfunc_describe(Error, "prepareStackTrace").set, Error, [__pfunc_prepareDispatch]);
  __pfunc_define(Error, "prepareStackTrace", {
    // (What a handler set, or undefined, as V8 reads it: saved and put back, the
    // dispatcher itself would be set, and call itself.)
    get: function __pfunc_prepareGet() { return handlersPrepare; },
    set: function __pfunc_prepareSet(prepare) { handlersPrepare = prepare; },
    enumerable: false,
    configurable: false,
  });

  // The engine's own stops (the time limit, memory) throw an InternalError that no code
  // can catch, and the binding words it as it leaves the engine: its toString, name,
  // message and stack are read there with no limit running. A handler's looping getter
  // on Error.prototype (or InternalError's) would run there for ever, and on a dev
  // server thread hold the GIL for good. So InternalError's prototype holds its own
  // copies, fixed: production (V8) has no InternalError, so no handler can miss them.
  {
    const errorStack = __pfunc_describe(Error.prototype, "stack");
    const errorToString = Error.prototype.toString;
    const fixed = { writable: false, enumerable: false, configurable: false };
    __pfunc_define(InternalError.prototype, "stack", {
      get: errorStack.get, set: errorStack.set, enumerable: false, configurable: false,
    });
    __pfunc_define(InternalError.prototype, "toString", { ...fixed, value: errorToString });
    __pfunc_define(InternalError.prototype, "name", { ...fixed, value: "InternalError" });
    __pfunc_define(InternalError.prototype, "message", { ...fixed, value: "" });
    // Words it as text before any toString or valueOf is looked for further up.
    __pfunc_define(InternalError.prototype, Symbol.toPrimitive, {
      ...fixed,
      value: function __pfunc_internalErrorText() { return __pfunc_apply(errorToString, this, []); },
    });
    Object.preventExtensions(InternalError.prototype); // (and its prototype stays Error's)
  }

  // A FinalizationRegistry's cleanup runs as a job too: its exception is dropped, as an
  // execution may be long over when it runs (it never left the engine before either).
  // (The engine's constructor is kept out of reach: its prototype's constructor is this
  // one, and a subclass of it would hand the engine's back through getPrototypeOf.)
  if (typeof FinalizationRegistry === "function") {
    const RealRegistry = FinalizationRegistry;
    const construct = Reflect.construct;
    const registry = function FinalizationRegistry(cleanup) {
      if (new.target === undefined) throw new TypeError("FinalizationRegistry must be called with new");
      const guarded = typeof cleanup !== "function" ? cleanup : function __pfunc_cleanup(held) {
        try {
          cleanup(held);
        } catch (dropped) {
          // (nothing to report it to)
        }
      };
      return construct(RealRegistry, [guarded], new.target);
    };
    __pfunc_define(registry, "prototype", { value: RealRegistry.prototype, writable: false, enumerable: false, configurable: false });
    __pfunc_define(RealRegistry.prototype, "constructor", { value: registry, writable: true, enumerable: false, configurable: true });
    globalThis.FinalizationRegistry = registry;
  }

  // A microtask's exception would leave the engine as the job's, worded by the binding
  // with no limit running (a thrown object's looping toString held a dev server thread
  // for good) and taken for a fault of pfunc's. It is the execution's error instead, as
  // an exception nothing catches is (a module's top-level one fails its load).
  const realQueueMicrotask = queueMicrotask;
  globalThis.queueMicrotask = function queueMicrotask(callback) {
    if (typeof callback !== "function") return realQueueMicrotask(callback); // its TypeError
    const execution = current;
    realQueueMicrotask(function __pfunc_microtask() {
      try {
        callback();
      } catch (error) {
        if (execution === null) {
          if (load.error === null) load.error = __pfunc_errorInfo(error);
        } else if (execution.error === null) {
          execution.settled = true;
          execution.error = __pfunc_errorInfo(error);
        }
      }
    });
  };

  // --- host calls --------------------------------------------------------------

  // Values JSON cannot carry are sent as markers so the host can word the error.
  function __pfunc_encode(value) {
    if (value === undefined) return { t: "undefined" };
    if (typeof value === "function") return { t: "function" };
    if (typeof value === "symbol") return { t: "symbol" };
    if (typeof value === "bigint") return { t: "BigInt" };
    if (typeof value === "number" && !Number.isFinite(value)) return { t: String(value) };
    if (value === null || typeof value !== "object") return { v: value };
    try {
      return { j: __pfunc_stringify(value) };
    } catch (error) {
      // JSON.stringify throws for a cycle, a BigInt, or (past the engine's stack) depth.
      const said = String(error && error.message);
      return { t: /circular|cycl/i.test(said) ? "cyclic" : /BigInt/i.test(said) ? "BigInt" : "deep" };
    }
  }

  function __pfunc_hostcall(module, method, args) {
    const id = nextCallId++;
    // Where the handler made the call, for the error's stack: QuickJS words a stack when
    // the error is made, so the frames are kept raw and worded only if the call fails.
    capturingSite = true;
    let site;
    try {
      site = new __pfunc_Error();
    } finally {
      capturingSite = false;
    }
    // (Set by index, not push: a handler's Array.prototype.push cannot starve its calls.)
    queue[queue.length] = [id, module, method, args.map(__pfunc_encode)];
    return new Promise(function __pfunc_wait(resolve, reject) {
      waiting.set(id, { resolve: resolve, reject: reject, site: site, method: method });
    });
  }

  function __pfunc_settle(id, ok, payload) {
    const waiter = waiting.get(id);
    if (!waiter) return;
    waiting.delete(id);
    if (ok) {
      waiter.resolve(payload === null || payload === undefined ? undefined : __pfunc_parse(payload));
      return;
    }
    const info = __pfunc_parse(payload);
    const Kind = info.name === "TypeError" ? TypeError : info.name === "RangeError" ? RangeError : Error;
    const error = new Kind(info.message);
    if (info.code) __pfunc_hide(error, "code", info.code);
    if (info.status) error.status = info.status;  // as the SDK's PubNubError carries it
    // The frames of the call site, under this error's own first line.
    const sites = waiter.site.stack;
    const name = waiter.method.slice(waiter.method.lastIndexOf(".") + 1); // objects.getX: getX
    // The call site's frames; the rejection stands without them when they cannot be had
    // (prepareStack, which never throws, gives no text when writing them failed).
    const written = Array.isArray(sites) ? __pfunc_prepareStack(waiter.site, sites, name) : "";
    const site = typeof written === "string" ? written : "";
    const frames = site.indexOf("\n") >= 0 ? site.slice(site.indexOf("\n")) : "";
    __pfunc_hide(error, "stack", Kind.name + ": " + info.message + frames);
    waiter.reject(error);
  }

  function __pfunc_stub(module, method) {
    return function __pfunc_stub_call(...args) {
      return __pfunc_hostcall(module, method, args);
    };
  }

  // A dotted method ("objects.getUUIDMetadata") lives in a namespace object, as in the
  // JavaScript SDK the pubnub module mirrors.
  function __pfunc_hostModule(module, methods) {
    const api = {};
    for (const method of methods) {
      const path = method.split(".");
      let owner = api;
      for (const part of path.slice(0, -1)) owner = owner[part] || (owner[part] = {});
      owner[path[path.length - 1]] = __pfunc_stub(module, method);
    }
    return api;
  }

  // --- modules ---------------------------------------------------------------------

  function __pfunc_xhrResponse(raw) {
    const response = {
      status: raw.status,
      statusText: raw.statusText,
      ok: raw.status >= 200 && raw.status < 300,
      headers: raw.headers,
      body: raw.body,
      url: raw.url,
      json: function json() {
        try {
          return Promise.resolve(__pfunc_parse(raw.body));
        } catch (error) {
          return Promise.reject(new SyntaxError("xhr response.json(): the body of " + raw.url +
            " is not valid JSON: " + error.message));
        }
      },
      text: function text() { return Promise.resolve(raw.body); },
    };
    // The raw bytes as production's Node runtime exposes them (a Buffer's JSON form), so
    // binary answers can be relayed: handlers read response["$buffer"].data.
    response["$buffer"] = { type: "Buffer", data: raw.buffer || [] };
    return response;
  }

  // Host modules come from pfunc's module registry (__pfunc_hostMethods, set before this
  // prelude): a stub per method. Three get a little more than stubs: xhr wraps its
  // response, pubnub rejects what pfunc does not emulate, crypto names its algorithms.
  const modules = {};
  for (const name of Object.keys(__pfunc_hostMethods)) {
    modules[name] = __pfunc_hostModule(name, __pfunc_hostMethods[name]);
  }

  const hostFetch = modules.xhr.fetch;
  modules.xhr.fetch = function fetch(url, options) {
    return hostFetch(url, options).then(__pfunc_xhrResponse);
  };

  // The synchronous built-ins (sandbox/builtins.js, passed in as text) are compiled on
  // the first require() of one: 55 KB of JavaScript, 3-4 ms per context that most
  // handlers never need. What compiling them takes is read now, before any handler code
  // runs: their source, padded so that their frames fall on pfunc's own lines and
  // wrapped in a function so that it declares nothing global (a handler may freeze
  // globalThis), and the engine's eval (above).
  const builtinsScript = "\n".repeat(ownCodeLine - 1) + "(function () {" +
    __pfunc_builtinsSource + "\n;return __pfunc_builtins;\n})()";
  let builtins = null;
  function __pfunc_builtins_load() {
    if (builtins === null) {
      builtins = __pfunc_evalScript(builtinsScript);
      for (const name of Object.keys(builtins)) __pfunc_withConstants(name, builtins[name]);
      __pfunc_recordBuiltins();
    }
    return builtins;
  }
  // A property read on first use; assigning it replaces it, as with any other property.
  function __pfunc_lazily(target, name, read) {
    Object.defineProperty(target, name, {
      get: read,
      set: function __pfunc_replaced(value) {
        Object.defineProperty(target, name, { value: value, writable: true, enumerable: true, configurable: true });
      },
      enumerable: true,
      configurable: true,
    });
  }

  // The pubnub module's synchronous, local methods (parseToken), as in the JavaScript SDK.
  for (const name of __pfunc_syncMethods.pubnub) {
    if (name !== "getFileUrl") {
      __pfunc_lazily(modules.pubnub, name, function __pfunc_localMethod() {
        return __pfunc_builtins_load().pubnub[name];
      });
    }
  }
  // getFileUrl builds the URL as the SDK does, from where this server keeps files.
  modules.pubnub.getFileUrl = function getFileUrl(options) {
    const given = options || {};
    for (const name of ["channel", "id", "name"]) {
      if (typeof given[name] !== "string" || !given[name]) {
        throw new TypeError("pubnub.getFileUrl: " + name + " must be a non-empty string");
      }
    }
    const base = (current && current.filesBase) || "http://127.0.0.1:8787/v1/files/sub-c-local";
    return base + "/channels/" + __pfunc_escape(given.channel) + "/files/" +
      __pfunc_escape(given.id) + "/" + __pfunc_escape(given.name);
  };
  // As the SDKs escape path segments (and Files.file_url for Python handlers): everything
  // but letters, digits and -_.~ is %-encoded.
  function __pfunc_escape(text) {
    return encodeURIComponent(text).replace(/[!'()*]/g, function __pfunc_hex(c) {
      return "%" + c.charCodeAt(0).toString(16).toUpperCase();
    });
  }
  // Any other pubnub method is a call the host refuses, saying it is not emulated, and
  // counts as every call does. Not `then` or `toJSON`, which the SDK has no more than any
  // object: a module returned from an async function, or logged, stays a plain object.
  const NOT_METHODS = ["then", "toJSON"];
  modules.pubnub = new Proxy(modules.pubnub, {
    get: function get(target, name) {
      if (typeof name !== "string" || name in target || NOT_METHODS.indexOf(name) >= 0) return target[name];
      return __pfunc_stub("pubnub", name);
    },
  });

  // The modules' members that are values (crypto.ALGORITHM, uuid.v3.DNS), from the registry.
  function __pfunc_withConstants(name, module) {
    const constants = __pfunc_constants[name] || {};
    for (const path of Object.keys(constants)) {
      const parts = path.split(".");
      let owner = module;
      for (const part of parts.slice(0, -1)) owner = owner[part];
      owner[parts[parts.length - 1]] = JSON.parse(JSON.stringify(constants[path]));
    }
    return module;
  }
  for (const name of Object.keys(modules)) __pfunc_withConstants(name, modules[name]);
  modules.console = console;
  modules.promise = Promise;
  // The synchronous modules (console and promise are the globals above).
  for (const name of __pfunc_syncModules) {
    if (!(name in modules)) {
      __pfunc_lazily(modules, name, function __pfunc_syncModule() {
        return __pfunc_builtins_load()[name];
      });
    }
  }

  require = function __pfunc_require(name) {
    if (typeof name === "string" && Object.prototype.hasOwnProperty.call(modules, name)) return modules[name];
    throw new Error("require(" + __pfunc_stringify(name) + "): no such module; PubNub Functions provide " +
      "only built-in modules: " + Object.keys(modules).join(", "));
  };

  // --- loading -----------------------------------------------------------------

  function __pfunc_errorInfo(error) {
    if (error instanceof Error) {
      try {
        const info = { type: error.name || "Error", message: String(error.message), stack: String(error.stack || "") };
        if (error.code !== undefined) info.code = String(error.code);
        // The engine's error with no room left for its words: out of memory.
        if (info.type === "InternalError" && info.message === "") info.outOfMemory = true;
        return info;
      } catch (unreadable) { // a getter of its own (name, message, stack, code) throws
        return { type: "Error", message: "the handler threw an error whose name, message or stack cannot be read (reading it throws)", stack: "" };
      }
    }
    const info = { type: "Error", message: "the handler threw a non-Error value: " + __pfunc_format(error), stack: "" };
    // QuickJS rejects with null when it cannot allocate even an error: out of memory.
    if (error === null) info.nullThrown = true;
    return info;
  }

  function __pfunc_watchLoad(modulePromise) {
    modulePromise.then(
      function __pfunc_loaded() { load.done = true; },
      function __pfunc_loadFailed(error) { load.done = true; load.error = __pfunc_errorInfo(error); }
    );
  }

  function __pfunc_loadState() {
    __pfunc_baseline();
    return __pfunc_envelope({
      done: load.done,
      error: load.error,
      type: typeof __pfunc_m.d,
    });
  }

  // --- one execution -------------------------------------------------------------

  // The call a completion kind stands for, as the handler wrote it: the kind itself is
  // read by the host ("response" among them), so only the warning's wording maps it.
  function __pfunc_completionCall(kind) {
    return kind === "response" ? "response.send" : kind;
  }

  function __pfunc_complete(execution, kind, detail) {
    if (execution.completion !== null) {
      execution.warnings.push(
        __pfunc_completionCall(kind) + "() was called after " +
        __pfunc_completionCall(execution.completion.kind) +
        "() had already completed this execution; ignored (the first completion call wins)"
      );
      return;
    }
    detail.kind = kind;
    detail.late = execution.settled;
    execution.completion = detail;
  }

  function __pfunc_messageRequest(event, execution) {
    const request = {
      message: event.message,
      channels: event.channels,
      verb: event.verb,
      params: event.params,
      meta: event.meta,
      pubkey: event.pubkey,
      subkey: event.subkey,
      version: event.version,
      uri: event.uri,
      ok: function __pfunc_ok(replacement) {
        const value = arguments.length > 0 && replacement !== undefined ? replacement : request.message;
        let text;
        const promised = []; // fields holding a Promise (an un-awaited call): JSON writes {}
        try {
          text = __pfunc_stringify(value, function __pfunc_promised(key, field) {
            if (field !== null && typeof field === "object" && typeof field.then === "function" &&
              promised.length < 3) promised.push(key === "" ? "the message" : __pfunc_stringify(key));
            return field;
          });
        } catch (error) {
          throw new TypeError("request.ok(): the message is not JSON-serialisable: " + error.message);
        }
        // A value JSON cannot carry, as the message itself, is refused (decisions.md): it
        // was delivered, and stored, as null.
        if (text === undefined || (typeof value === "number" && !Number.isFinite(value))) {
          throw new TypeError("request.ok(): the message is not JSON-serialisable: it is " +
            (typeof value === "number" ? String(value) : typeof value === "function" ? "a function" : typeof value));
        }
        if (promised.length) {
          execution.warnings.push(
            "request.ok(): " + promised.join(", ") + " in the message is a Promise, sent as {}: " +
            "await the call that made it"
          );
        }
        if (replacement !== undefined && event.phase === "after") {
          execution.warnings.push(
            "request.ok(message) in an " + event.kind + " handler cannot change the message: it " +
            "was already delivered; the argument is ignored"
          );
        }
        __pfunc_complete(execution, "ok", { message: text === undefined ? "null" : text });
        return Promise.resolve(request);
      },
      abort: function __pfunc_abort(reason) {
        __pfunc_complete(execution, "abort", { reason: reason === undefined ? null : __pfunc_format(reason) });
        return Promise.resolve(request);
      },
    };
    return [request];
  }

  function __pfunc_bodyObject(text) {
    // A primitive string, as production gives, unless the body is a JSON object: then a
    // String that also carries its fields, so that JSON.parse(request.body) and
    // request.body.userId both work (docs/handlers.md, "request.body").
    // Only a JSON object changes anything: anything else is not parsed (a failed parse
    // makes an error, and its stack, for nothing).
    if (typeof text !== "string" || !/^\s*\{/.test(text)) return text;
    let parsed;
    try {
      parsed = __pfunc_parse(text);
    } catch (error) {
      return text;
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return text;
    const body = new String(text);
    {
      for (const key of Object.keys(parsed)) {
        try {
          Object.defineProperty(body, key, { value: parsed[key], enumerable: false, writable: true, configurable: true });
        } catch (error) {
          // keys a String cannot take (e.g. "length") stay reachable through JSON.parse
        }
      }
    }
    return body;
  }

  function __pfunc_hasHeader(headers, name) {
    return Object.keys(headers).some(function __pfunc_sameName(key) { return key.toLowerCase() === name; });
  }

  // What response.send(body) sends: strings (request.body echoed back too) as they are,
  // objects as JSON (saying so unless the handler did), anything else as its text.
  function __pfunc_sentText(body, headers) {
    const text = __pfunc_textOf(body);
    if (text !== undefined) return text;
    if (body === undefined || body === null) return "";
    if (typeof body !== "object") return String(body);
    if (!__pfunc_hasHeader(headers, "content-type")) headers["content-type"] = "application/json";
    return __pfunc_stringify(body);
  }

  function __pfunc_httpRequest(event, execution) {
    const text = event.body;
    const request = {
      method: event.method,
      path: event.path,
      params: event.query,
      query: event.query,
      headers: event.headers,
      body: __pfunc_bodyObject(text),
      meta: event.meta,
      uri: event.uri,
      json: function __pfunc_json() {
        try {
          return Promise.resolve(__pfunc_parse(text));
        } catch (error) {
          return Promise.reject(new SyntaxError("request.json(): the body is not valid JSON: " + error.message));
        }
      },
    };
    const response = {
      status: 200,
      headers: {},
      send: function __pfunc_send(body, status) {
        // As Node's setHeader takes them: an array is one header line a value (several
        // Set-Cookie lines; joined, a browser keeps only the first cookie), and undefined
        // is refused (a request header copied over that the request did not carry).
        const headers = {};
        for (const key of Object.keys(response.headers || {})) {
          const value = response.headers[key];
          if (value === undefined) {
            throw new TypeError("response.send(): the value of header " + __pfunc_stringify(key) +
              " is undefined; set it to text, or delete it");
          }
          headers[key] = Array.isArray(value) ? value.map(String) : String(value);
        }
        const text = __pfunc_sentText(body, headers);
        const code = status !== undefined ? Number(status) : Number(response.status);
        if (!Number.isInteger(code) || code < 200 || code > 599) { // (a 1xx is no final answer)
          throw new TypeError("response.send(): status must be an HTTP status code (200 to 599), got " +
            String(status !== undefined ? status : response.status));
        }
        __pfunc_complete(execution, "response", { status: code, headers: headers, body: text });
        return Promise.resolve();
      },
    };
    return [request, response];
  }

  // Tests seed randomness so uuid.v4 and utils.randomInt repeat (mulberry32). An in-line
  // execution records the values it draws (the engine's own, fast), and past TAPE_MAX
  // draws from a generator of its own whose starting state the tape records: sfc32, 128
  // bits of state from the engine's Math.random, 52 bits a value as the engine's.
  Math.random = function random() {
    const tape = current === null ? null : current.tape;
    return tape === null ? __pfunc_liveRandom() : __pfunc_tapedRandom(tape);
  };

  function __pfunc_liveRandom() {
    return seeded === null ? engineRandom() : __pfunc_mulberry32(seeded);
  }

  function __pfunc_tapedRandom(tape) {
    const replay = tape.replay;
    if (replay !== null) {
      if (replay.randomAt < replay.random.length) return replay.random[replay.randomAt++];
      // Past the values kept, the first attempt drew from its generator (if it got there).
      if (replay.random.length >= TAPE_MAX && tape.generator !== null) {
        return __pfunc_generated(tape.generator.state);
      }
      return __pfunc_liveRandom();
    }
    const record = tape.record;
    if (record === null) return __pfunc_liveRandom();
    if (record.random.length >= TAPE_MAX) return __pfunc_generated(tape.generator.state);
    const value = __pfunc_liveRandom();
    record.random.push(value);
    return value;
  }

  function __pfunc_generated(state) {
    const high = __pfunc_sfc32(state) >>> 6;
    const low = __pfunc_sfc32(state) >>> 6;
    return (high * 67108864 + low) / 4503599627370496;
  }

  function __pfunc_mulberry32(generator) {
    generator.state = (generator.state + 0x6d2b79f5) >>> 0;
    let t = generator.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  function __pfunc_sfc32(state) {
    const a = state[0], b = state[1], c = state[2], d = (state[3] + 1) | 0;
    const t = (((a + b) | 0) + d) | 0;
    state[0] = b ^ (b >>> 9);
    state[1] = (c + (c << 3)) | 0;
    state[2] = (((c << 21) | (c >>> 11)) + t) | 0;
    state[3] = d;
    return t >>> 0;
  }

  function __pfunc_seedRandom(seed) {
    seeded = { state: seed >>> 0 };
  }

  // A loaded context handed to another test run, before its handler module is evaluated
  // again (a new module: its own state, its top-level code run again, as a new load).
  function __pfunc_unload() {
    loadLogs.length = 0;
    consoleUse.kept = consoleUse.dropped = 0;
    load.done = false;
    load.error = null;
    __pfunc_m.d = undefined;
    // The globals the last load's code added go too, symbols included. One it made
    // non-configurable cannot: false then, and the host makes a new context instead.
    let removed = true;
    for (const key of ownKeys(globalThis)) {
      if (preludeGlobals.has(key)) continue;
      try {
        if (!delete globalThis[key]) removed = false;
      } catch (error) { // in strict code, delete throws instead
        removed = false;
      }
    }
    return removed;
  }

  function __pfunc_setClock(nowMs) {
    fixedNowMs = nowMs === undefined ? null : nowMs;
  }

  function __pfunc_intervalEvent(execution) {
    const event = {
      ok: function __pfunc_interval_ok() {
        __pfunc_complete(execution, "ok", {});
        return Promise.resolve();
      },
      abort: function __pfunc_interval_abort(reason) {
        __pfunc_complete(execution, "abort", { reason: reason === undefined ? null : __pfunc_format(reason) });
        return Promise.resolve();
      },
    };
    return [event];
  }

  function __pfunc_start(eventJson, nowMs) {
    __pfunc_setClock(nowMs);
    const event = __pfunc_parse(eventJson);
    const execution = {
      kind: event.kind,
      logs: loadLogs.splice(0),
      console: { kept: consoleUse.kept, dropped: consoleUse.dropped },
      warnings: [],
      completion: null,
      settled: false,
      error: null,
      filesBase: event.filesBase,
      tape: __pfunc_newTape(event),
    };
    current = execution;
    // The family (from pfunc's table of event kinds) decides what the handler receives.
    const args = event.family === "request"
      ? __pfunc_httpRequest(event, execution)
      : event.family === "interval"
        ? __pfunc_intervalEvent(execution)
        : __pfunc_messageRequest(event, execution);
    let returned;
    try {
      returned = __pfunc_m.d(...args);
    } catch (error) {
      execution.settled = true;
      execution.error = __pfunc_errorInfo(error);
      return;
    }
    Promise.resolve(returned).then(
      function __pfunc_settled(value) {
        // Resolving with the request itself (`return request;`, as PubNub's Promises
        // documentation does) is ok() with the message as it stands: ok() resolves to it.
        if (value === args[0] && event.family === "message" && execution.completion === null) {
          args[0].ok();
        }
        execution.settled = true;
      },
      function __pfunc_rejected(error) {
        execution.settled = true;
        execution.error = __pfunc_errorInfo(error);
      }
    );
  }

  // Polled by Python after each slice: "S" or "R" (settled or running) when no host
  // call is queued, else JSON [settled, calls]. (Built by JSON.stringify, never by
  // concatenation: the binding cannot read QuickJS rope strings.)
  function __pfunc_poll() {
    const settled = current !== null && current.settled;
    if (queue.length === 0) return settled ? "S" : "R";
    const text = __pfunc_envelope([settled, queue]);
    queue.length = 0;
    return text;
  }

  function __pfunc_finish() {
    const execution = current;
    current = null;
    consoleUse.kept = consoleUse.dropped = 0;
    waiting.clear();
    queue.length = 0;
    return __pfunc_envelope({
      completion: execution.completion,
      logs: execution.logs,
      warnings: execution.warnings,
      consoleDropped: execution.console.dropped, // the executor words the warning
      error: execution.error,
      tampered: __pfunc_tampered(),
    });
  }

  // --- built-ins pfunc's own code relies on ------------------------------------------
  //
  // The prelude runs on the engine's built-ins (a spread, a for...of, push, then...), and
  // a handler may replace them. What a handler's code left in place by the end of its
  // top-level code is the baseline (an unconditional polyfill is its own business); one
  // replaced during an execution is reported with that execution's report, and the host
  // replaces the context, so the next execution does not run pfunc's side on it.
  // One slot per built-in: its label, owner and key, the engine's own value and the value
  // as of the baseline; the check is compiled with each key spelled out, since a property
  // read by a key held in a variable costs QuickJS a lookup of its name (10x slower).
  const labels = [];
  const owners = [];
  const keys = [];
  const engineValues = [];
  const baselineValues = [];

  function __pfunc_rely(label, owner, names) {
    for (const key of names) {
      labels.push(typeof key === "symbol" ? label + "[" + key.description + "]" : label + "." + key);
      owners.push(owner);
      keys.push(key);
      engineValues.push(owner[key]);
      baselineValues.push(owner[key]);
    }
  }

  (function __pfunc_reliedOn() {
    const ArrayIterator = Object.getPrototypeOf([][Symbol.iterator]());
    const MapIterator = Object.getPrototypeOf(new Map()[Symbol.iterator]());
    const iterator = Symbol.iterator;
    __pfunc_rely("globalThis", globalThis, ["Promise", "Object", "Array", "String", "Number",
      "Map", "Set", "Symbol", "Error", "TypeError", "RangeError", "SyntaxError", "Reflect"]);
    __pfunc_rely("Object", Object, ["keys", "defineProperty", "getOwnPropertyNames",
      "getPrototypeOf", "create", "assign"]);
    // Absent ones too: a toJSON or then on every object changes what pfunc serialises and
    // which values its Promises treat as thenables.
    __pfunc_rely("Object.prototype", Object.prototype, ["toString", "hasOwnProperty", "toJSON", "then"]);
    __pfunc_rely("Array", Array, ["isArray", "from", Symbol.species]);
    __pfunc_rely("Array.prototype", Array.prototype, ["push", "map", "filter", "find", "some",
      "slice", "splice", "concat", "join", "indexOf", "forEach", "toJSON", "constructor", iterator]);
    __pfunc_rely("%ArrayIteratorPrototype%", ArrayIterator, ["next"]);
    // The species and constructor too: then() and map() build their results with them.
    __pfunc_rely("Promise", Promise, ["resolve", "reject", Symbol.species]);
    __pfunc_rely("Promise.prototype", Promise.prototype, ["then", "catch", "finally", "constructor"]);
    __pfunc_rely("Map.prototype", Map.prototype, ["get", "set", "has", "delete", "clear", iterator]);
    __pfunc_rely("%MapIteratorPrototype%", MapIterator, ["next"]);
    __pfunc_rely("Set.prototype", Set.prototype, ["has", "add"]);
    __pfunc_rely("String.prototype", String.prototype, ["split", "slice", "indexOf", "replace",
      "toLowerCase", "toUpperCase", "repeat", "charCodeAt", "toString", "toJSON", iterator]);
    __pfunc_rely("Function.prototype", Function.prototype, ["call", "apply", "bind"]);
    __pfunc_rely("RegExp.prototype", RegExp.prototype, ["test", "exec", Symbol.replace]);
    __pfunc_rely("Number", Number, ["isFinite", "isInteger"]);
    __pfunc_rely("Error", Error, ["prepareStackTrace"]);
  })();

  // A check of every slot against a set of expected values: index of the first slot that
  // differs, or -1. The owners and values are the closure's own variables, and each key
  // is spelled out in the code (a read by a key held in a variable costs QuickJS a
  // lookup of its name: this way the whole check takes ~2 us).
  const distinctOwners = [];
  const ownerOf = owners.map(function __pfunc_ownerIndex(owner) {
    let at = distinctOwners.indexOf(owner);
    if (at < 0) at = distinctOwners.push(owner) - 1;
    return at;
  });
  const __pfunc_checkFactory = __pfunc_evalScript(
    "(function __pfunc_checkFactory(" +
    distinctOwners.map(function __pfunc_ownerName(owner, i) { return "o" + i; }).join(",") +
    ", k, v, s) {\n" +
    keys.map(function __pfunc_valueName(key, i) {
      return "const v" + i + " = v[" + i + "], s" + i + " = s[" + i + "];\n";
    }).join("") +
    "return function __pfunc_firstChanged() {\n" +
    keys.map(function __pfunc_slotCheck(key, i) {
      const read = typeof key === "symbol" ? "[k[" + i + "]]" : "." + key;
      return "if (o" + ownerOf[i] + read + " !== v" + i + " && !s" + i + ") return " + i + ";\n";
    }).join("") + "return -1; }; })"
  );

  // Runs after the handler's top-level code too: no method it may have replaced (it
  // calls through __pfunc_apply, Reflect.apply as it was).
  // `skipped`: slots not to check (a getter top-level code put there, which gives a new
  // value on every read).
  function __pfunc_checkAgainst(values, skipped) {
    const args = [];
    let n = 0;
    for (let i = 0; i < distinctOwners.length; i++) args[n++] = distinctOwners[i];
    const expected = [];
    for (let i = 0; i < values.length; i++) expected[i] = values[i];
    args[n++] = keys;
    args[n++] = expected;
    args[n++] = skipped;
    return __pfunc_apply(__pfunc_checkFactory, null, args);
  }

  const noneSkipped = [];
  for (let i = 0; i < keys.length; i++) noneSkipped[i] = false;
  const sinceEngine = __pfunc_checkAgainst(engineValues, noneSkipped);
  let sinceBaseline = sinceEngine;
  let baselineSkipped = noneSkipped;

  // After the handler module loads: what it left in place is what pfunc expects. Read
  // twice: a slot whose two reads differ (or throw) is a getter of the handler's, not a
  // value to hold it to.
  function __pfunc_baseline() {
    const skipped = [];
    let changed = false;
    for (let i = 0; i < owners.length; i++) {
      try {
        baselineValues[i] = owners[i][keys[i]];
        skipped[i] = baselineValues[i] !== engineValues[i] &&
          owners[i][keys[i]] !== baselineValues[i];
      } catch (error) {
        skipped[i] = true;
      }
      changed = changed || baselineValues[i] !== engineValues[i] || skipped[i];
    }
    // Nothing changed (most handlers): the engine's check serves, no new closure.
    baselineSkipped = changed ? skipped : noneSkipped;
    sinceBaseline = changed ? __pfunc_checkAgainst(baselineValues, skipped) : sinceEngine;
  }

  // The first built-in replaced since the baseline, or (`sinceEngine`, to explain a
  // failure) since the engine made it; "" if none. A getter put in a built-in's place
  // runs here, under the host's time limit for reading the report; one that throws is
  // found slot by slot and named.
  function __pfunc_tampered(fromEngine) {
    const check = fromEngine === true ? sinceEngine : sinceBaseline;
    try {
      const at = check();
      return at < 0 ? "" : labels[at];
    } catch (error) {
      const expected = fromEngine === true ? engineValues : baselineValues;
      const skipped = fromEngine === true ? noneSkipped : baselineSkipped;
      for (let i = 0; i < owners.length; i++) {
        if (skipped[i]) continue;
        try {
          if (owners[i][keys[i]] !== expected[i]) return labels[i];
        } catch (thrown) {
          return labels[i];
        }
      }
      return "";
    }
  }

  // The host reads these entry points with Context.get(), once, before the handler loads;
  // they cannot be replaced or deleted either.
  //
  // What such an entry throws leaves the engine, and the binding words it there with no
  // limit running: a value of the handler's (a toJSON getter's throw while the report is
  // written) would run the handler's code there. So anything but null (memory) leaves as
  // a copy pfunc makes here, under the limit; the engine's own stops cannot be caught,
  // and leave as they are (their prototype is fixed above).
  function __pfunc_entry(name, value) {
    function __pfunc_guarded(a, b, c) { // (no entry takes more; no apply frame in stacks)
      try {
        return value(a, b, c);
      } catch (error) {
        if (error === null) throw null; // (memory ran out: said so by the host)
        throw __pfunc_safeCopy(error);
      }
    }
    Object.defineProperty(globalThis, name, { value: __pfunc_guarded, writable: false, configurable: false });
  }

  // What the binding would read of `error` (its text and stack), read here, under the
  // limit, into an InternalError of pfunc's own: nothing of it runs code when worded.
  function __pfunc_safeCopy(error) {
    let name = "", message = "", stack = "";
    try {
      if (error instanceof __pfunc_Error) {
        name = __pfunc_format(error.name);
        message = __pfunc_format(error.message);
        stack = __pfunc_format(error.stack);
      } else {
        message = __pfunc_format(error);
      }
    } catch (unreadable) { // a Proxy's throwing trap, a throwing getter
      name = stack = "";
      message = "a value that could not be read";
    }
    const copy = new __pfunc_InternalError(message);
    __pfunc_define(copy, "name", { value: name });
    __pfunc_define(copy, "stack", { value: stack });
    return copy;
  }

  function __pfunc_isInternalError(error) {
    return typeof error === "object" && __pfunc_prototypeOf(error) === __pfunc_InternalError.prototype;
  }
  __pfunc_entry("__pfunc_api_setClock", __pfunc_setClock);
  __pfunc_entry("__pfunc_api_seedRandom", __pfunc_seedRandom);
  __pfunc_entry("__pfunc_api_start", __pfunc_start);
  __pfunc_entry("__pfunc_api_poll", __pfunc_poll);
  __pfunc_entry("__pfunc_api_settle", __pfunc_settle);
  __pfunc_entry("__pfunc_api_finish", __pfunc_finish);
  __pfunc_entry("__pfunc_api_watchLoad", __pfunc_watchLoad);
  __pfunc_entry("__pfunc_api_loadState", __pfunc_loadState);
  __pfunc_entry("__pfunc_api_setHandler", __pfunc_setHandler);
  __pfunc_entry("__pfunc_api_unload", __pfunc_unload);
  __pfunc_entry("__pfunc_api_readTape", __pfunc_readTape);
  __pfunc_entry("__pfunc_api_tampered", __pfunc_tampered);

  // --- a context as pfunc left it, for the next test run --------------------------
  //
  // A test run reuses a loaded context for the next scenario (renew), which must start
  // as a new instance would. The handler module is loaded again, but what a handler did
  // to the built-ins stays: so a test run's context records, before its handler loads,
  // every own property of each built-in object (its value, or its getter and setter),
  // whether more may be added to it, and how many the main prototypes have; and before
  // the context is handed on, it is checked against that record (~740 properties of
  // ~130 objects, once a scenario: ~120 us here in a loop of checks, ~200 between
  // scenarios, about half of it counting properties; the property reads are compiled,
  // as the built-ins check above is: 130 us to ~50).
  const recordedOwners = [];
  const recordedKeys = []; // per property: its owner, its key
  const recordedOwnerIndex = []; // per property: its owner's index in recordedOwners
  const recordedValues = []; // a data property's value; an accessor's descriptor
  const recordedAccessor = [];
  const recordedExtensible = [];
  const recordedPrototypes = [];
  const countedOwners = []; // owner indexes, beside how many own properties each has:
  const countedLengths = []; // parallel arrays (a for...of over pairs costs 20 us a check)
  const ownKeys = Reflect.ownKeys;
  const isExtensible = Object.isExtensible;

  function __pfunc_record() {
    const proto = Object.getPrototypeOf;
    const owners = [
      globalThis, Object, Object.prototype, Function, Function.prototype, Array,
      Array.prototype, proto([][Symbol.iterator]()), proto(proto([][Symbol.iterator]())),
      String, String.prototype, proto(""[Symbol.iterator]()), Number, Number.prototype,
      Boolean, Boolean.prototype, Symbol, Symbol.prototype, globalThis.Date, RealDate.prototype,
      RealDate, Math, JSON, Reflect, Promise, Promise.prototype, Map, Map.prototype,
      proto(new Map()[Symbol.iterator]()), Set, Set.prototype, WeakMap.prototype,
      WeakSet.prototype, RegExp, RegExp.prototype, Error, Error.prototype, TypeError,
      TypeError.prototype, RangeError, RangeError.prototype, SyntaxError,
      SyntaxError.prototype, ReferenceError, ReferenceError.prototype, EvalError,
      EvalError.prototype, URIError, URIError.prototype, BigInt, BigInt.prototype,
      ArrayBuffer, ArrayBuffer.prototype, proto(Uint8Array), proto(Uint8Array.prototype),
      Uint8Array.prototype, DataView.prototype, console, globalThis.performance,
    ];
    // The intrinsics no global names: the functions' kinds, their generators, iterators.
    const generatorFunction = proto(function* () {});
    const asyncGeneratorFunction = proto(async function* () {});
    const asyncFunction = proto(async function () {});
    owners.push(
      generatorFunction, generatorFunction.constructor, generatorFunction.prototype,
      asyncGeneratorFunction, asyncGeneratorFunction.constructor,
      asyncGeneratorFunction.prototype, proto(asyncGeneratorFunction.prototype),
      asyncFunction, asyncFunction.constructor, proto(new Set()[Symbol.iterator]()),
      proto("".matchAll(/a/g)),
    );
    // The iterator helpers' and Iterator.from's (where QuickJS has them).
    if (typeof [].values().map === "function") owners.push(proto([].values().map((x) => x)));
    if (typeof globalThis.Iterator === "function" && typeof Iterator.from === "function") {
      owners.push(proto(Iterator.from({ next() { return { done: true }; } })));
    }
    // And every other global the engine has (Atomics, DisposableStack, DOMException...),
    // each with its prototype: whatever the engine adds, a handler may change.
    for (const name of Object.getOwnPropertyNames(globalThis)) {
      const held = __pfunc_describe(globalThis, name);
      const value = held === undefined ? undefined : held.value; // (a getter's is not read)
      if (name.startsWith("__pfunc") || value === null) continue;
      if (typeof value === "function") owners.push(value, value.prototype);
      else if (typeof value === "object") owners.push(value);
    }
    for (const owner of owners) __pfunc_recordOwner(owner, owner !== globalThis);
    // The modules require() gives: a handler may wrap their methods too.
    __pfunc_recordTree(modules);
    if (builtins !== null) __pfunc_recordBuiltins();
  }

  // A module's objects, and what they hold, as deep as they go (pubnub.objects,
  // uuid.v5.URL, jsonpath.JSONPath): a handler may change any of them. Of a function that
  // holds no more than a function's own length, name and prototype (most methods), only
  // how many properties it has is recorded: recording those three too would add half
  // again to the check.
  function __pfunc_recordTree(owner) {
    if (recordedOwners.indexOf(owner) >= 0) return;
    __pfunc_recordOwner(owner, true);
    for (const key of ownKeys(owner)) {
      const value = __pfunc_describe(owner, key).value; // a getter's result is not held
      if (typeof value === "function" && !__pfunc_holdsMore(value)) {
        __pfunc_recordOwner(value, true, false);
      } else if (typeof value === "function" || (typeof value === "object" && value !== null)) {
        __pfunc_recordTree(value);
      }
    }
  }

  function __pfunc_holdsMore(fn) {
    for (const key of ownKeys(fn)) {
      if (key !== "length" && key !== "name" && key !== "prototype") return true;
    }
    return false;
  }

  // One object's own properties. `counted`: how many it has is recorded too (not for the
  // global object: a handler's own globals are there until the next load removes them);
  // `properties` false: only that.
  function __pfunc_recordOwner(owner, counted, properties) {
    if (owner === undefined || owner === null || recordedOwners.indexOf(owner) >= 0) return;
    const index = recordedOwners.push(owner) - 1;
    recordedExtensible.push(isExtensible(owner));
    recordedPrototypes.push(__pfunc_prototypeOf(owner)); // (Object.setPrototypeOf(globalThis, ...))
    const keys = ownKeys(owner);
    if (counted) {
      countedOwners.push(index);
      countedLengths.push(keys.length);
    }
    if (properties === false) return;
    for (const key of keys) {
      const own = __pfunc_describe(owner, key);
      // A property neither writable nor configurable (Math.PI, Symbol.iterator, NaN)
      // cannot change: nothing to check.
      if (!own.configurable && own.writable !== true) continue;
      recordedOwnerIndex.push(index);
      recordedKeys.push(key);
      recordedAccessor.push(own.get !== undefined || own.set !== undefined);
      recordedValues.push(own.get !== undefined || own.set !== undefined ? own : own.value);
    }
  }

  // The synchronous built-ins, compiled on their first require(): recorded then, in a
  // context that records, before any handler code sees them.
  function __pfunc_recordBuiltins() {
    if (recordedOwners.length === 0) return;
    __pfunc_recordTree(builtins);
  }

  // The index of the first property that differs, -2 for a change in a built-in's shape,
  // -1 for none.
  function __pfunc_firstDifference() {
    if (propertyCheckCovers !== recordedKeys.length) {
      propertyCheck = __pfunc_compilePropertyCheck();
      propertyCheckCovers = recordedKeys.length;
    }
    // The property reads first: they are the only part that can run a handler's code (a
    // getter in a built-in's place), and what it adds or locks is then counted below.
    const changed = propertyCheck();
    if (changed >= 0) return changed;
    if (handlersPrepare !== undefined) return -2;
    for (let o = 0; o < recordedOwners.length; o++) {
      if (isExtensible(recordedOwners[o]) !== recordedExtensible[o]) return -2;
      if (__pfunc_prototypeOf(recordedOwners[o]) !== recordedPrototypes[o]) return -2;
    }
    for (let c = 0; c < countedOwners.length; c++) {
      if (ownKeys(recordedOwners[countedOwners[c]]).length !== countedLengths[c]) return -2;
    }
    return -1;
  }

  // The recorded properties' check, compiled with each key spelled out where it can be
  // (a read by a key held in a variable costs QuickJS a lookup of its name), and made
  // again when more are recorded (the synchronous built-ins, on their first require()).
  // It returns the index of the first property that differs, or -1.
  let propertyCheck = null;
  let propertyCheckCovers = 0;

  // Whether `key` can follow a dot: ASCII letters, digits (not first), _ and $. Syntax
  // only, no method a handler could have replaced (a RegExp's test that puts itself back
  // after adding to Object.prototype would pass a check that called it).
  function __pfunc_dottable(key) {
    if (key.length === 0 || key === "__proto__") return false;
    for (let j = 0; j < key.length; j++) {
      const c = key[j];
      const letter = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_" || c === "$";
      if (!letter && !(j > 0 && c >= "0" && c <= "9")) return false;
    }
    return true;
  }

  function __pfunc_compilePropertyCheck() {
    let body = "";
    for (let i = 0; i < recordedKeys.length; i++) {
      const key = recordedKeys[i];
      const owner = "o" + recordedOwnerIndex[i];
      const read = typeof key === "symbol" ? "[k[" + i + "]]"
        : __pfunc_dottable(key) ? "." + key : "[" + __pfunc_stringify(key) + "]";
      const then = "v" + i;
      body += recordedAccessor[i]
        ? "now = d(" + owner + ", k[" + i + "]); if (now === undefined || now.get !== " + then +
          ".get || now.set !== " + then + ".set) return " + i + ";\n"
        : "now = " + owner + read + "; if (now !== " + then + " && (now === now || " + then +
          " === " + then + ")) return " + i + ";\n"; // NaN is NaN
    }
    // Owners and values as the closure's own constants: one read each, not three.
    let constants = "";
    for (let o = 0; o < recordedOwners.length; o++) constants += "const o" + o + " = o[" + o + "];\n";
    for (let i = 0; i < recordedValues.length; i++) constants += "const v" + i + " = v[" + i + "];\n";
    const factory = __pfunc_evalScript(
      "(function __pfunc_propertyCheckFactory(o, k, v, d) {\n" + constants +
      "return function __pfunc_firstChangedProperty() {\nlet now;\n" + body + "return -1; }; })"
    );
    return factory(recordedOwners, recordedKeys, recordedValues, __pfunc_describe);
  }

  // "" when every built-in is as the prelude left it (or nothing was recorded: not a
  // test run); else what changed first.
  function __pfunc_pristine() {
    if (recordedOwners.length === 0) return "";
    const at = __pfunc_firstDifference();
    if (at === -1) return "";
    return at === -2 ? "the properties of a built-in" : String(recordedKeys[at]);
  }
  __pfunc_entry("__pfunc_api_record", __pfunc_record);
  __pfunc_entry("__pfunc_api_pristine", __pfunc_pristine);

  // The globals there are before any handler code runs, the entries above included (see
  // __pfunc_unload).
  const preludeGlobals = new Set(Reflect.ownKeys(globalThis));
})(Date);
