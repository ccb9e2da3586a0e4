// pfunc sandbox: the callee of a call that failed with QuickJS's bare "not a function",
// read back from the handler's source as V8 would name it ("request.reject",
// "page.filter", "db.get(...).then"), with where V8 places the error. Evaluated before
// prelude.js, which keeps __pfunc_calleeReader for its stack formatting (a handler that
// replaces the global changes nothing). Every function is named __pfunc_* so that its
// frames are dropped from stacks.

var __pfunc_calleeReader = (function __pfunc_calleeInit(describe, prototypeOf) {
  "use strict";

  let lines = []; // the handler's source lines, as the reader was last given them
  let code = new Map(); // line number -> that line without its // comment (__pfunc_code)
  let read = new Map(); // "line:column:question" of readings that ran out of steps

  // A reading costs at most this many steps over the source: a caught "not a function"
  // in a loop over a minified file of one long line must not scan it whole each time.
  // Past it the reader gives up (null: QuickJS's own words).
  const STEPS = 5000;
  const OUT_OF_STEPS = new Error("out of steps"); // thrown to stop a reading
  let steps = 0;
  function __pfunc_step() {
    if (++steps > STEPS) throw OUT_OF_STEPS;
  }

  // The callee of the call that failed, read from the source as written
  // ("request.reject", "CHECKS[name]", "o?.a.b"). The engine's column is the last place
  // the call recorded: the callee's last member, inside the brackets of a computed one,
  // or, when an argument recorded one (a name, a function, a nested call), inside the
  // argument list. So a reading at the column that is not itself called stands for the
  // call whose parentheses enclose it. null when the source does not read as a call:
  // QuickJS's own words are kept then, rather than a wrong name.
  const IDENTIFIER = /[\w$]/;
  const CLOSING = { "(": ")", "[": "]" };
  const OPENING = { ")": "(", "]": "[" };
  // Words a parenthesis can follow without being a call's.
  const NOT_CALLEES = /^(if|for|while|switch|catch|function|return|typeof|void|await|yield|in|of|new|delete|async|else|do|case|throw)$/;
  const ENCLOSING_LINES = 30; // how far up a call's opening parenthesis is looked for

  // A string's other end from one of its quotes (step 1: forward, -1: back), or -1.
  function __pfunc_quoteEnd(text, at, step) {
    const quote = text[at];
    for (let i = at + step; i >= 0 && i < text.length; i += step) {
      __pfunc_step();
      if (text[i] === quote && text[i - 1] !== "\\") return i; // not an escaped one
    }
    return -1;
  }

  const QUOTES = "\"'`";

  // Where the member chain ending at `end` starts: names, dots, optional chaining and
  // balanced brackets; -1 when a quote does not close.
  function __pfunc_chainStart(text, end) {
    let start = end;
    while (start > 0) {
      __pfunc_step();
      const ch = text[start - 1];
      if (IDENTIFIER.test(ch) || ch === "." || (ch === "?" && text[start] === ".")) {
        start--;
        continue;
      }
      if (QUOTES.includes(ch) && text[start] === ".") { // a literal's method: "abc".foo
        const opening = __pfunc_quoteEnd(text, start - 1, -1);
        if (opening < 0) return -1;
        start = opening;
        break;
      }
      if (!OPENING[ch]) break;
      let nesting = 0;
      let at = start - 1;
      for (; at >= 0; at--) {
        __pfunc_step();
        if (QUOTES.includes(text[at])) {
          at = __pfunc_quoteEnd(text, at, -1);
          if (at < 0) return -1;
        } else if (text[at] === ch) nesting++;
        else if (text[at] === OPENING[ch] && --nesting === 0) break;
      }
      if (at < 0) return -1;
      start = at;
    }
    return start;
  }

  // A callee as V8 shows it: each call's arguments as (...) (db.get(...).then), inner
  // calls first; a parenthesised group, (o.a).b, as written.
  function __pfunc_shown(chain) {
    let shown = chain.replace(/^\?*\.+|[?.]+$/g, "");
    // Strings set aside first (as \u0004N\u0005): a ( in o.f(")") is no call.
    const strings = [];
    let kept = "";
    for (let at = 0; at < shown.length; at++) {
      if (QUOTES.includes(shown[at])) {
        const end = __pfunc_quoteEnd(shown, at, 1);
        if (end < 0) return shown; // not read whole: shown as written
        strings.push(shown.slice(at, end + 1));
        kept += "\u0004" + (strings.length - 1) + "\u0005";
        at = end;
      } else kept += shown[at];
    }
    shown = kept;
    const groups = []; // parenthesised groups, set aside as \u0002N\u0003 until the end
    let before;
    do {
      __pfunc_step();
      before = shown;
      shown = shown.replace(/\([^()]*\)/g, function __pfunc_collapse(group, at, whole) {
        if (at > 0 && /[\w$\])\u0001\u0003]/.test(whole[at - 1])) return "\u0001"; // a call
        groups.push(group);
        return "\u0002" + (groups.length - 1) + "\u0003";
      });
    } while (shown !== before);
    while (shown.indexOf("\u0002") >= 0) {
      __pfunc_step();
      shown = shown.replace(/\u0002(\d+)\u0003/g, function __pfunc_restore(_, index) {
        return groups[Number(index)];
      });
    }
    shown = shown.replace(/\u0004(\d+)\u0005/g, (_, index) => strings[Number(index)]);
    return shown.split("\u0001").join("(...)");
  }

  // The chain text[start:end] as a callee: made by `new` or not as `constructing` asks,
  // not a keyword, nor a declaration's name (function f(...)). Its text and where V8
  // places the error (its last name, else its start; a 1-based column), or null.
  function __pfunc_callee(text, start, end, constructing, line, newAtColumn) {
    if (start < 0 || start >= end) return null;
    let chain = text.slice(start, end).trim();
    // What stands before the chain on its first line: its text and where it ends (read
    // from the end only, without copying a long line).
    let headText = text;
    let headEnd = __pfunc_skipSpaceBack(text, start);
    // A chain broken over lines (db.get("a")\n  .then(...)) starts on a line above.
    for (let above = line - 1; chain[0] === "." && headEnd === 0 && above >= 1 &&
      above > line - ENCLOSING_LINES; above--) {
      const previous = __pfunc_code(lines[above - 1]).trimEnd(); // without a // comment
      const from = __pfunc_chainStart(previous, previous.length);
      if (from < 0 || from === previous.length) break;
      chain = previous.slice(from).trim() + chain;
      headText = previous;
      headEnd = __pfunc_skipSpaceBack(previous, from);
    }
    const expression = __pfunc_shown(chain);
    if (!/^[A-Za-z_$("'`]/.test(expression) || NOT_CALLEES.test(expression)) return null;
    if (__pfunc_wordBefore(headText, headEnd, "function") ||
      __pfunc_wordBefore(headText, headEnd, "function*")) return null;
    const made = __pfunc_wordBefore(headText, headEnd, "new");
    // QuickJS says "not a function" for new g() too, where V8 says "g is not a constructor".
    const constructed = made && !constructing && Boolean(newAtColumn);
    if (made !== constructing && !constructed) return null;
    const lastName = /[A-Za-z_$][\w$]*$/.exec(text.slice(start, end).trimEnd());
    const at = lastName && !made ? start + lastName.index : start;
    return { expression: expression, line: line, column: at + 1, constructed: constructed };
  }

  // Where the whitespace before `at` begins (0: nothing but whitespace before it).
  function __pfunc_skipSpaceBack(text, at) {
    while (at > 0 && /\s/.test(text[at - 1])) {
      __pfunc_step();
      at--;
    }
    return at;
  }

  // Whether the { at `at` opens a block (after `)`, `=>`, else, try, do, finally) rather
  // than an object literal; read back from it only, never the whole line.
  function __pfunc_opensBlock(text, at) {
    const end = __pfunc_skipSpaceBack(text, at);
    if (end === 0) return false;
    if (text[end - 1] === ")" || (text[end - 1] === ">" && text[end - 2] === "=")) return true;
    return ["else", "try", "do", "finally"].some((word) => __pfunc_wordBefore(text, end, word));
  }

  // Whether text[0:end] ends with `word` as a word of its own (not o.new, renew).
  function __pfunc_wordBefore(text, end, word) {
    if (end < word.length || text.slice(end - word.length, end) !== word) return false;
    return end === word.length || !/[\w$.]/.test(text[end - word.length - 1]);
  }

  // The reading at the engine's column, when the source calls it there.
  function __pfunc_calledAt(text, line, column, constructing) {
    let end = column - 1;
    if (QUOTES.includes(text[end])) {
      end = __pfunc_quoteEnd(text, end, 1) + 1; // a string key: o["b"]()
      if (end === 0) return null;
    }
    // A `new` points at the callee's start: on over its names (new o.A()); a ? only as
    // optional chaining (?.), never a conditional's.
    while (end < text.length &&
      (IDENTIFIER.test(text[end]) || text[end] === "." || (text[end] === "?" && text[end + 1] === "."))) {
      __pfunc_step();
      end++;
    }
    // Inside a computed key (CHECKS[name]()): on to the bracket that closes it.
    let depth = 0;
    let called = false;
    let chained = false; // f(1)(2): the call's result is called in turn
    for (let at = end; at < text.length && /[^;{}]/.test(text[at]); at++) {
      __pfunc_step();
      const ch = text[at];
      if (depth === 0 && ch === "`") { // a tagged template: o.x`text` calls o.x
        called = /^\s*$/.test(text.slice(end, at));
        break;
      }
      if (QUOTES.includes(ch)) {
        at = __pfunc_quoteEnd(text, at, 1);
        if (at < 0) return null;
        continue;
      }
      if (depth === 0 && ch === "(") { // the call's arguments, if nothing stands between
        called = /^\s*(\?\.)?$/.test(text.slice(end, at));
        const after = __pfunc_closing(text, at);
        chained = after >= 0 && /^\s*(\(|`)/.test(text.slice(after + 1));
        break;
      }
      if (CLOSING[ch]) depth++;
      else if (OPENING[ch]) {
        if (depth > 0) depth--;
        else if (ch === ")") break;
        if (depth === 0 && ch === "]") end = at + 1; // a computed key ends the callee
      }
    }
    if (!called) return null;
    const start = __pfunc_chainStart(text, end);
    const callee = __pfunc_callee(text, start, end, constructing, line, true);
    if (callee) callee.chained = chained;
    return callee;
  }

  // Where the parenthesis opened at `open` closes on its line (strings skipped), or -1.
  function __pfunc_closing(text, open) {
    let depth = 0;
    for (let at = open; at < text.length; at++) {
      __pfunc_step();
      if (QUOTES.includes(text[at])) {
        at = __pfunc_quoteEnd(text, at, 1);
        if (at < 0) return -1;
      } else if (text[at] === "(") depth++;
      else if (text[at] === ")" && --depth === 0) return at;
    }
    return -1;
  }

  // A line without its // comment (a ( in "// see helper(" is no call).
  function __pfunc_code(text) {
    for (let at = 0; at < text.length; at++) {
      __pfunc_step();
      if (QUOTES.includes(text[at])) {
        const end = __pfunc_quoteEnd(text, at, 1);
        if (end < 0) return text;
        at = end;
      } else if (text[at] === "/" && text[at + 1] === "/") {
        return text.slice(0, at);
      }
    }
    return text;
  }

  // The callee of the call whose argument list holds the column: out through brackets
  // (an object or array literal argument) and up through lines, to the statement's start.
  function __pfunc_enclosingCall(line, column, constructing, accept) {
    let depth = 0;
    for (let number = line; number >= 1 && number > line - ENCLOSING_LINES; number--) {
      if (!code.has(number)) { // a line longer than the budget is minified: no // in it
        const raw = lines[number - 1];
        code.set(number, raw.length > STEPS ? raw : __pfunc_code(raw));
      }
      const text = code.get(number);
      for (let at = (number === line ? Math.min(column - 1, text.length) : text.length) - 1;
        at >= 0; at--) {
        __pfunc_step();
        const ch = text[at];
        if (QUOTES.includes(ch)) {
          at = __pfunc_quoteEnd(text, at, -1);
          if (at < 0) return UNSURE; // a quote in a regex or a comment: cannot read on
        } else if (ch === ")" || ch === "]" || ch === "}") depth++;
        else if (ch === ";" && depth === 0) return null;
        else if (ch === "(" || ch === "[" || ch === "{") {
          if (depth > 0) {
            depth--;
          } else if (ch === "{" && __pfunc_opensBlock(text, at)) {
            return null; // a block, not an object literal: no call of this statement holds it
          } else if (ch === "(") {
            let end = at;
            while (end > 0 && text[end - 1] === " ") end--;
            if (text.slice(end - 2, end) === "?.") end -= 2;
            const start = __pfunc_chainStart(text, end);
            const callee = __pfunc_callee(text, start, end, constructing, number);
            if (callee && (accept ? accept(callee)
              : __pfunc_globalKind(callee.expression) !== "function")) return callee;
          }
        }
      }
    }
    return null;
  }

  // What `expression` names among the globals' own (JSON.stringify, String), read
  // through data properties only (no getter of a handler's runs here): "function",
  // "other" (a global's missing or non-function property: JSON.stringfy), or "unknown"
  // (no global: a local, whose value cannot be read from here).
  function __pfunc_globalKind(expression) {
    if (!/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(expression)) return "unknown";
    const names = expression.split(".");
    if (!describe(globalThis, names[0])) return "unknown";
    let value = globalThis;
    for (const name of names) {
      let property;
      // Own, or inherited (Function.prototype.call): data properties only.
      for (let owner = value, depth = 0; !property && depth < 8 &&
        (owner !== null && typeof owner === "object" || typeof owner === "function"); depth++) {
        property = describe(owner, name);
        owner = prototypeOf(owner);
      }
      if (!property || !("value" in property)) return "other";
      value = property.value;
    }
    return typeof value === "function" ? "function" : "other";
  }

  function __pfunc_calleeAt(line, column, constructing) {
    const text = lines[line - 1];
    if (text === undefined) return null;
    const atColumn = __pfunc_calledAt(text, line, column, constructing);
    const enclosing = () => __pfunc_enclosingCall(line, column, constructing);
    if (!atColumn) return __pfunc_sure(enclosing());
    // The column says where, not which call: o.x(f(1)) leaves it at f whether f failed or
    // o.x did after it, and f(1)(2) whether f or what it returned. What the globals tell
    // settles it (JSON.stringify is a function: not it; JSON.stringfy is none: it);
    // for a local it stays open, and QuickJS's own words are kept rather than a guess.
    const kind = atColumn.constructed ? "unknown" : __pfunc_globalKind(atColumn.expression);
    if (atColumn.chained) {
      if (kind === "function") atColumn.expression += "(...)";
      return kind === "unknown" ? null : atColumn;
    }
    if (kind === "function") return __pfunc_sure(enclosing());
    if (kind === "other") return atColumn;
    return enclosing() === null ? atColumn : null; // one enclosing, or not sure: open
  }

  const UNSURE = {}; // an enclosing scan that could not read its way (an odd quote)
  function __pfunc_sure(found) {
    return found === UNSURE ? null : found;
  }

  // The call of a method named `name` (a host call: fetch, set, publish) at the column or
  // around it: QuickJS's column for it is often inside its arguments (fetch(url +
  // encodeURIComponent(q)) is placed at q). Its callee's place, or null.
  function __pfunc_callOf(line, column, name) {
    const text = lines[line - 1];
    if (text === undefined) return null;
    const named = (callee) => /[\w$]*$/.exec(callee.expression)[0] === name;
    const atColumn = __pfunc_calledAt(text, line, column, false);
    if (atColumn && named(atColumn)) return atColumn;
    return __pfunc_sure(__pfunc_enclosingCall(line, column, false, named));
  }

  // A reading within the step budget, as a copy (a caller's change stays its own). A place
  // whose reading ran out of steps is not read again (a loop failing there would scan its
  // long line each time). A reading never fails the error it words: whatever goes wrong
  // in it (the budget spent, a built-in the handler replaced), the answer is null and
  // QuickJS's words stand.
  function __pfunc_remembered(sourceLines, key, reading) {
    try {
      __pfunc_use(sourceLines);
      if (read.has(key)) return null; // ran out of steps there before: it would again
      steps = 0;
      let found = null;
      try {
        found = reading();
      } catch (error) {
        // Out of steps: remembered, so that a loop failing there does not scan again. Any
        // other failure (a built-in of the handler's that threw, the stack's depth) is
        // not: the next reading there may well succeed. A reading that succeeded is not
        // kept either, since it depends on the globals of the moment.
        if (error === OUT_OF_STEPS) read.set(key, true);
        return null;
      }
      return found && {
        expression: found.expression, line: found.line, column: found.column,
        constructed: found.constructed,
      };
    } catch (error) {
      return null;
    }
  }

  function __pfunc_use(sourceLines) {
    if (sourceLines !== lines) { // another load: other lines
      code = new Map();
      read = new Map();
    }
    lines = sourceLines;
  }

  return {
    // (source lines, line, column of the engine's frame, a constructor call?) -> the
    // callee {expression, line, column}, or null when the source does not settle it.
    callee: function __pfunc_readCallee(sourceLines, line, column, constructing) {
      return __pfunc_remembered(sourceLines, line + ":" + column + ":" + constructing,
        () => __pfunc_calleeAt(line, column, constructing));
    },
    // (source lines, line, column, method name) -> where the call of that method is.
    callOf: function __pfunc_readCallOf(sourceLines, line, column, name) {
      return __pfunc_remembered(sourceLines, line + ":" + column + ":" + name,
        () => __pfunc_callOf(line, column, name));
    },
  };
})(Object.getOwnPropertyDescriptor, Object.getPrototypeOf);
