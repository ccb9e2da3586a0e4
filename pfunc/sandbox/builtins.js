// pfunc's synchronous built-in modules, evaluated in the sandbox before the prelude.
//
// PubNub's jwt, uuid, utils, codec/*, jsonpath and advanced_math return values
// synchronously, and QuickJS cannot call into Python while a time limit is set, so
// they are written here in JavaScript (hashes included). Tests cross-check them
// against Python's hashlib, uuid and PyJWT.

var __pfunc_builtins = (function __pfunc_builtins_init() {
  "use strict";

  // --- bytes, UTF-8 and base64 ---------------------------------------------------

  function utf8Encode(text) {
    const bytes = [];
    for (let i = 0; i < text.length; i++) {
      let code = text.charCodeAt(i);
      if (code >= 0xd800 && code < 0xdc00 && i + 1 < text.length) {
        const next = text.charCodeAt(i + 1);
        if (next >= 0xdc00 && next < 0xe000) {
          code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
          i++;
        }
      }
      if (code < 0x80) bytes.push(code);
      else if (code < 0x800) bytes.push(0xc0 | (code >> 6), 0x80 | (code & 63));
      else if (code < 0x10000) bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
      else bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
    }
    return bytes;
  }

  function utf8Decode(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i];
      let code;
      if (b < 0x80) { code = b; i += 1; }
      else if (b < 0xe0) { code = ((b & 31) << 6) | (bytes[i + 1] & 63); i += 2; }
      else if (b < 0xf0) { code = ((b & 15) << 12) | ((bytes[i + 1] & 63) << 6) | (bytes[i + 2] & 63); i += 3; }
      else {
        code = ((b & 7) << 18) | ((bytes[i + 1] & 63) << 12) | ((bytes[i + 2] & 63) << 6) | (bytes[i + 3] & 63);
        i += 4;
      }
      out += String.fromCodePoint(code);
    }
    return out;
  }

  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  function base64Encode(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
      out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
      out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=";
      out += i + 2 < bytes.length ? B64[n & 63] : "=";
    }
    return out;
  }

  function base64Decode(text, caller) {
    const clean = String(text).replace(/[\s=]/g, "").replace(/-/g, "+").replace(/_/g, "/");
    if (/[^A-Za-z0-9+/]/.test(clean) || clean.length % 4 === 1) {
      throw new Error(caller + ": not valid base64: " + JSON.stringify(String(text).slice(0, 40)));
    }
    const bytes = [];
    for (let i = 0; i < clean.length; i += 4) {
      const n = (B64.indexOf(clean[i]) << 18) | (B64.indexOf(clean[i + 1]) << 12) |
        ((clean[i + 2] ? B64.indexOf(clean[i + 2]) : 0) << 6) | (clean[i + 3] ? B64.indexOf(clean[i + 3]) : 0);
      bytes.push((n >> 16) & 255);
      if (clean[i + 2]) bytes.push((n >> 8) & 255);
      if (clean[i + 3]) bytes.push(n & 255);
    }
    return bytes;
  }

  function base64url(bytes) {
    return base64Encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function hex(bytes) {
    return bytes.map((b) => (b < 16 ? "0" : "") + b.toString(16)).join("");
  }

  // --- hashes --------------------------------------------------------------------

  function rotl(x, n) { return (x << n) | (x >>> (32 - n)); }
  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

  function padded(bytes, bigEndian, lengthBytes) {
    const blockSize = lengthBytes === 16 ? 128 : 64;
    const out = bytes.slice();
    out.push(0x80);
    while ((out.length % blockSize) !== blockSize - lengthBytes) out.push(0);
    const bits = bytes.length * 8;
    const length = [];
    for (let i = 0; i < lengthBytes; i++) {
      length.push(i < 4 ? Math.floor(bits / Math.pow(2, 8 * i)) & 255 : 0);
    }
    if (bigEndian) length.reverse();
    return out.concat(length);
  }

  function words(bytes, bigEndian) {
    const w = [];
    for (let i = 0; i < bytes.length; i += 4) {
      w.push(bigEndian
        ? (bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]
        : bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    }
    return w;
  }

  function wordBytes(ws, bigEndian) {
    const out = [];
    for (const x of ws) {
      if (bigEndian) out.push((x >>> 24) & 255, (x >>> 16) & 255, (x >>> 8) & 255, x & 255);
      else out.push(x & 255, (x >>> 8) & 255, (x >>> 16) & 255, (x >>> 24) & 255);
    }
    return out;
  }

  const MD5_S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
  const MD5_K = [];
  for (let i = 0; i < 64; i++) MD5_K.push(Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0);

  function md5(bytes) {
    const w = words(padded(bytes, false, 8), false);
    let a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    for (let off = 0; off < w.length; off += 16) {
      let a = a0, b = b0, c = c0, d = d0;
      for (let i = 0; i < 64; i++) {
        let f, g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        const temp = d;
        d = c;
        c = b;
        b = (b + rotl((a + f + MD5_K[i] + w[off + g]) | 0, MD5_S[(i >> 4) * 4 + (i % 4)])) | 0;
        a = temp;
      }
      a0 = (a0 + a) | 0; b0 = (b0 + b) | 0; c0 = (c0 + c) | 0; d0 = (d0 + d) | 0;
    }
    return wordBytes([a0, b0, c0, d0], false);
  }

  function sha1(bytes) {
    const w0 = words(padded(bytes, true, 8), true);
    let h = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0];
    for (let off = 0; off < w0.length; off += 16) {
      const w = w0.slice(off, off + 16);
      for (let i = 16; i < 80; i++) w.push(rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1));
      let [a, b, c, d, e] = h;
      for (let i = 0; i < 80; i++) {
        let f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc | 0; }
        else { f = b ^ c ^ d; k = 0xca62c1d6 | 0; }
        const temp = (rotl(a, 5) + f + e + k + w[i]) | 0;
        e = d; d = c; c = rotl(b, 30); b = a; a = temp;
      }
      h = [(h[0] + a) | 0, (h[1] + b) | 0, (h[2] + c) | 0, (h[3] + d) | 0, (h[4] + e) | 0];
    }
    return wordBytes(h, true);
  }

  const SHA256_K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ].map((k) => k | 0);

  function sha256(bytes) {
    const w0 = words(padded(bytes, true, 8), true);
    let h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
      .map((x) => x | 0);
    for (let off = 0; off < w0.length; off += 16) {
      const w = w0.slice(off, off + 16);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w.push((w[i - 16] + s0 + w[i - 7] + s1) | 0);
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i]) | 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h = [a, b, c, d, e, f, g, hh].map((x, i) => (h[i] + x) | 0);
    }
    return wordBytes(h, true);
  }

  // SHA-512 and SHA-384 on BigInt words: slower than 32-bit pairs, but short and clear,
  // and only JWT signing of small texts uses them.
  const MASK64 = (1n << 64n) - 1n;
  const SHA512_K = [
    "428a2f98d728ae22", "7137449123ef65cd", "b5c0fbcfec4d3b2f", "e9b5dba58189dbbc", "3956c25bf348b538",
    "59f111f1b605d019", "923f82a4af194f9b", "ab1c5ed5da6d8118", "d807aa98a3030242", "12835b0145706fbe",
    "243185be4ee4b28c", "550c7dc3d5ffb4e2", "72be5d74f27b896f", "80deb1fe3b1696b1", "9bdc06a725c71235",
    "c19bf174cf692694", "e49b69c19ef14ad2", "efbe4786384f25e3", "0fc19dc68b8cd5b5", "240ca1cc77ac9c65",
    "2de92c6f592b0275", "4a7484aa6ea6e483", "5cb0a9dcbd41fbd4", "76f988da831153b5", "983e5152ee66dfab",
    "a831c66d2db43210", "b00327c898fb213f", "bf597fc7beef0ee4", "c6e00bf33da88fc2", "d5a79147930aa725",
    "06ca6351e003826f", "142929670a0e6e70", "27b70a8546d22ffc", "2e1b21385c26c926", "4d2c6dfc5ac42aed",
    "53380d139d95b3df", "650a73548baf63de", "766a0abb3c77b2a8", "81c2c92e47edaee6", "92722c851482353b",
    "a2bfe8a14cf10364", "a81a664bbc423001", "c24b8b70d0f89791", "c76c51a30654be30", "d192e819d6ef5218",
    "d69906245565a910", "f40e35855771202a", "106aa07032bbd1b8", "19a4c116b8d2d0c8", "1e376c085141ab53",
    "2748774cdf8eeb99", "34b0bcb5e19b48a8", "391c0cb3c5c95a63", "4ed8aa4ae3418acb", "5b9cca4f7763e373",
    "682e6ff3d6b2b8a3", "748f82ee5defb2fc", "78a5636f43172f60", "84c87814a1f0ab72", "8cc702081a6439ec",
    "90befffa23631e28", "a4506cebde82bde9", "bef9a3f7b2c67915", "c67178f2e372532b", "ca273eceea26619c",
    "d186b8c721c0c207", "eada7dd6cde0eb1e", "f57d4f7fee6ed178", "06f067aa72176fba", "0a637dc5a2c898a6",
    "113f9804bef90dae", "1b710b35131c471b", "28db77f523047d84", "32caab7b40c72493", "3c9ebe0a15c9bebc",
    "431d67c49c100d4c", "4cc5d4becb3e42b6", "597f299cfc657e2a", "5fcb6fab3ad6faec", "6c44198c4a475817",
  ].map((k) => BigInt("0x" + k));
  const SHA512_IV = ["6a09e667f3bcc908", "bb67ae8584caa73b", "3c6ef372fe94f82b", "a54ff53a5f1d36f1",
    "510e527fade682d1", "9b05688c2b3e6c1f", "1f83d9abfb41bd6b", "5be0cd19137e2179"].map((k) => BigInt("0x" + k));
  const SHA384_IV = ["cbbb9d5dc1059ed8", "629a292a367cd507", "9159015a3070dd17", "152fecd8f70e5939",
    "67332667ffc00b31", "8eb44a8768581511", "db0c2e0d64f98fa7", "47b5481dbefa4fa4"].map((k) => BigInt("0x" + k));

  function rotr64(x, n) { return ((x >> n) | (x << (64n - n))) & MASK64; }

  function sha512Family(bytes, iv, outWords) {
    const data = padded(bytes, true, 16);
    let h = iv.slice();
    for (let off = 0; off < data.length; off += 128) {
      const w = [];
      for (let i = 0; i < 16; i++) {
        let x = 0n;
        for (let j = 0; j < 8; j++) x = (x << 8n) | BigInt(data[off + i * 8 + j]);
        w.push(x);
      }
      for (let i = 16; i < 80; i++) {
        const s0 = rotr64(w[i - 15], 1n) ^ rotr64(w[i - 15], 8n) ^ (w[i - 15] >> 7n);
        const s1 = rotr64(w[i - 2], 19n) ^ rotr64(w[i - 2], 61n) ^ (w[i - 2] >> 6n);
        w.push((w[i - 16] + s0 + w[i - 7] + s1) & MASK64);
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 80; i++) {
        const t1 = (hh + (rotr64(e, 14n) ^ rotr64(e, 18n) ^ rotr64(e, 41n)) + ((e & f) ^ (~e & MASK64 & g)) +
          SHA512_K[i] + w[i]) & MASK64;
        const t2 = ((rotr64(a, 28n) ^ rotr64(a, 34n) ^ rotr64(a, 39n)) + ((a & b) ^ (a & c) ^ (b & c))) & MASK64;
        hh = g; g = f; f = e; e = (d + t1) & MASK64; d = c; c = b; b = a; a = (t1 + t2) & MASK64;
      }
      h = [a, b, c, d, e, f, g, hh].map((x, i) => (h[i] + x) & MASK64);
    }
    const out = [];
    for (const x of h.slice(0, outWords)) {
      for (let j = 7n; j >= 0n; j--) out.push(Number((x >> (j * 8n)) & 255n));
    }
    return out;
  }

  const HASHES = {
    md5: { fn: md5, block: 64 },
    sha1: { fn: sha1, block: 64 },
    sha256: { fn: sha256, block: 64 },
    sha384: { fn: (b) => sha512Family(b, SHA384_IV, 6), block: 128 },
    sha512: { fn: (b) => sha512Family(b, SHA512_IV, 8), block: 128 },
  };

  function hmac(name, keyBytes, messageBytes) {
    const { fn, block } = HASHES[name];
    let key = keyBytes.length > block ? fn(keyBytes) : keyBytes.slice();
    while (key.length < block) key.push(0);
    const inner = fn(key.map((b) => b ^ 0x36).concat(messageBytes));
    return fn(key.map((b) => b ^ 0x5c).concat(inner));
  }

  // --- uuid ------------------------------------------------------------------------

  const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
  const NIL = "00000000-0000-0000-0000-000000000000";

  function formatUuid(bytes) {
    const h = hex(bytes);
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20, 32);
  }

  function uuidBytes(text) {
    if (!uuid.validate(text)) throw new TypeError("uuid: invalid namespace UUID " + JSON.stringify(text));
    const h = text.replace(/-/g, "");
    const out = [];
    for (let i = 0; i < 32; i += 2) out.push(parseInt(h.slice(i, i + 2), 16));
    return out;
  }

  function nameBased(version, hashName, name, namespace) {
    const nameBytes = typeof name === "string" ? utf8Encode(name) : Array.from(name);
    const bytes = HASHES[hashName].fn(uuidBytes(namespace).concat(nameBytes)).slice(0, 16);
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    return formatUuid(bytes);
  }

  const uuid = {
    v4: function v4() {
      const bytes = [];
      for (let i = 0; i < 16; i++) bytes.push(Math.floor(Math.random() * 256));
      bytes[6] = (bytes[6] & 0x0f) | 0x40;
      bytes[8] = (bytes[8] & 0x3f) | 0x80;
      return formatUuid(bytes);
    },
    v3: function v3(name, namespace) { return nameBased(3, "md5", name, namespace); },
    v5: function v5(name, namespace) { return nameBased(5, "sha1", name, namespace); },
    validate: function validate(text) {
      return typeof text === "string" && (UUID_PATTERN.test(text) || text === NIL);
    },
    version: function version(text) {
      if (!uuid.validate(text)) throw new TypeError("uuid.version: invalid UUID " + JSON.stringify(text));
      return parseInt(text.charAt(14), 16);
    },
  };  // NIL, v3.DNS, v3.URL, v5.DNS, v5.URL: the registry's constants (pfunc/modules)

  // --- jwt (the behaviour of the jsonwebtoken package: HS*, RS* and ES* algorithms) ------

  function jwtError(name, message, extra) {
    const error = new Error(message);
    error.name = name;
    Object.assign(error, extra || {});
    return error;
  }

  const JWT_ALGORITHMS = { HS256: "sha256", HS384: "sha384", HS512: "sha512" };
  const PK_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"];

  // jsonwebtoken 9's algorithms; PS256/384/512 are valid there but not built in pfunc.
  const JSONWEBTOKEN_ALGORITHMS = Object.keys(JWT_ALGORITHMS).concat(PK_ALGORITHMS, ["PS256", "PS384", "PS512", "none"]);
  // What each key type may sign with, and the curve each ES algorithm needs, as
  // jsonwebtoken's validateAsymmetricKey words them.
  const ALGORITHMS_OF_KEY = { rsa: ["RS256", "PS256", "RS384", "PS384", "RS512", "PS512"], ec: ["ES256", "ES384", "ES512"] };
  const OPENSSL_CURVE = { ES256: "prime256v1", ES384: "secp384r1", ES512: "secp521r1" };
  const SPAN_HINT = ' should be a number of seconds or string representing a timespan eg: "1d", "20h", 60';

  // jsonwebtoken's timespans are the ms package's: a number and a unit ("2 days", "1.5h",
  // "10 minutes"; no unit is milliseconds), a year 365.25 days; undefined if not one.
  const SPAN_UNITS = [
    [/^(years?|yrs?|y)$/, 31557600000], [/^(weeks?|w)$/, 604800000], [/^(days?|d)$/, 86400000],
    [/^(hours?|hrs?|h)$/, 3600000], [/^(minutes?|mins?|m)$/, 60000], [/^(seconds?|secs?|s)$/, 1000],
    [/^(milliseconds?|msecs?|ms)$/, 1],
  ];
  function spanMilliseconds(text) {
    const match = text.length <= 100 ? /^(-?(?:\d+)?\.?\d+) *([a-z]+)?$/i.exec(text) : null;
    const unit = match && SPAN_UNITS.find((entry) => entry[0].test((match[2] || "ms").toLowerCase()));
    return unit ? parseFloat(match[1]) * unit[1] : undefined;
  }

  // jsonwebtoken's timespan(): the time in seconds `span` after `base` (text is floored).
  function timespan(span, base) {
    base = base || Math.floor(Date.now() / 1000);  // as jsonwebtoken's: an iat of 0 is now
    if (typeof span === "string") {
      const milliseconds = spanMilliseconds(span);
      return milliseconds === undefined ? undefined : Math.floor(base + milliseconds / 1000);
    }
    return typeof span === "number" ? base + span : undefined;
  }

  function isPlainObject(value) {
    if (typeof value !== "object" || value === null) return false;
    const prototype = Object.getPrototypeOf(value);
    return prototype === null || prototype === Object.prototype;
  }
  const isText = (value) => typeof value === "string";
  const isFlag = (value) => typeof value === "boolean";
  const isSpan = (value) => Number.isInteger(value) || (typeof value === "string" && value !== "");
  // jsonwebtoken's sign() options and registered claims, with its messages.
  const SIGN_OPTIONS = {
    expiresIn: [isSpan, '"expiresIn" should be a number of seconds or string representing a timespan'],
    notBefore: [isSpan, '"notBefore" should be a number of seconds or string representing a timespan'],
    audience: [(value) => isText(value) || Array.isArray(value), '"audience" must be a string or array'],
    algorithm: [(value) => JSONWEBTOKEN_ALGORITHMS.indexOf(value) >= 0, '"algorithm" must be a valid string enum value'],
    header: [isPlainObject, '"header" must be an object'],
    encoding: [isText, '"encoding" must be a string'],
    issuer: [isText, '"issuer" must be a string'],
    subject: [isText, '"subject" must be a string'],
    jwtid: [isText, '"jwtid" must be a string'],
    noTimestamp: [isFlag, '"noTimestamp" must be a boolean'],
    keyid: [isText, '"keyid" must be a string'],
    mutatePayload: [isFlag, '"mutatePayload" must be a boolean'],
    allowInsecureKeySizes: [isFlag, '"allowInsecureKeySizes" must be a boolean'],
    allowInvalidAsymmetricKeyTypes: [isFlag, '"allowInvalidAsymmetricKeyTypes" must be a boolean'],
  };
  const CLAIMS = {};
  ["iat", "exp", "nbf"].forEach((claim) => {
    CLAIMS[claim] = [(value) => typeof value === "number", '"' + claim + '" should be a number of seconds'];
  });
  const CLAIM_OF_OPTION = { audience: "aud", issuer: "iss", subject: "sub", jwtid: "jti" };
  const OBJECT_ONLY_OPTIONS = ["expiresIn", "notBefore", "noTimestamp", "audience", "issuer", "subject", "jwtid"];

  function validate(schema, allowUnknown, object, name) {
    if (!isPlainObject(object)) throw new Error('Expected "' + name + '" to be a plain object.');
    Object.keys(object).forEach((key) => {
      const rule = schema[key];
      if (!rule) {
        if (!allowUnknown) throw new Error('"' + key + '" is not allowed in "' + name + '"');
      } else if (!rule[0](object[key])) {
        throw new Error(rule[1]);
      }
    });
  }

  // Key material as jsonwebtoken reads it: a PEM key pfunc can read is asymmetric (for
  // verify, a private key stands for its public half), any other text a secret.
  function keyMaterial(text, caller, forSigning) {
    if (typeof text !== "string") {  // jsonwebtoken takes text or a Buffer: a number or an un-awaited Promise is no key
      throw forSigning ? new Error("secretOrPrivateKey is not valid key material")
        : jwtError("JsonWebTokenError", "secretOrPublicKey is not valid key material");
    }
    const key = text.indexOf("-----BEGIN") >= 0 ? readKey(text, caller) : null;
    if (key === null) return { kind: "secret", text: text };
    if (forSigning && key.d === undefined) return { kind: "secret", text: text };  // not a private key
    return { kind: forSigning ? "private" : "public", key: key };
  }

  function checkKeyFits(algorithm, material) {
    if (!material.key) return;
    const allowed = ALGORITHMS_OF_KEY[material.key.type];
    if (allowed.indexOf(algorithm) < 0) {
      throw new Error('"alg" parameter for "' + material.key.type + '" key type must be one of: ' + allowed.join(", ") + ".");
    }
    if (material.key.type === "ec" && CURVE_OF_ALG[algorithm] !== material.key.curve.name) {
      throw new Error('"alg" parameter "' + algorithm + '" requires curve "' + OPENSSL_CURVE[algorithm] + '".');
    }
  }

  function notBuilt(algorithm, caller) {
    return new Error(caller + ': "' + algorithm + '" is not built in pfunc (HS256/384/512, RS256/384/512, ' +
      "ES256/384/512 and none are)");
  }

  function segment(value) { return base64url(utf8Encode(JSON.stringify(value))); }

  // --- public-key signatures for jwt (RS256/384/512, ES256/384/512) -------------------
  // PEM keys (PKCS#8, PKCS#1, SEC1, SPKI) read with a small DER reader; RSA PKCS#1 v1.5
  // and ECDSA over the NIST curves with BigInt arithmetic, deterministic k (RFC 6979).
  // Synchronous, as jsonwebtoken's sign and verify are: the sandbox cannot call Python.

  function derNode(bytes, at) {
    if (at + 2 > bytes.length) throw new Error("not a DER key");
    const tag = bytes[at];
    let length = bytes[at + 1];
    let start = at + 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count > 4) throw new Error("not a DER key");
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + bytes[start++];
    }
    if (start + length > bytes.length) throw new Error("not a DER key");
    return { tag: tag, start: start, end: start + length };
  }

  function derChildren(bytes, node) {
    const children = [];
    for (let at = node.start; at < node.end;) {
      const child = derNode(bytes, at);
      children.push(child);
      at = child.end;
    }
    return children;
  }

  function bigFrom(bytes, start, end) {
    let value = 0n;
    for (let i = start; i < end; i++) value = (value << 8n) | BigInt(bytes[i]);
    return value;
  }

  function bytesOf(value, size) {
    const out = new Array(size).fill(0);
    for (let i = size - 1; i >= 0 && value > 0n; i--) {
      out[i] = Number(value & 255n);
      value >>= 8n;
    }
    return out;
  }

  function hexOf(bytes, node) { return hex(bytes.slice(node.start, node.end)); }

  const OID_RSA = "2a864886f70d010101";
  const OID_EC = "2a8648ce3d0201";

  function curve(name, p, b, gx, gy, n) {
    return { name: name, p: BigInt(p), a: BigInt(p) - 3n, b: BigInt(b), g: [BigInt(gx), BigInt(gy)], n: BigInt(n) };
  }
  const CURVES = {
    "2a8648ce3d030107": curve("P-256",
      "0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
      "0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
      "0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
      "0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
      "0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    "2b81040022": curve("P-384",
      "0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
      "0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
      "0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
      "0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
      "0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"),
    "2b81040023": curve("P-521",
      "0x01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
      "0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
      "0x00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
      "0x011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
      "0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409"),
  };
  const CURVE_OF_ALG = { ES256: "P-256", ES384: "P-384", ES512: "P-521" };

  function ecPoint(bytes, node, ec) {
    // An uncompressed point (04 || X || Y) in a BIT STRING (first byte: unused bits).
    const start = node.tag === 0x03 ? node.start + 1 : node.start;
    const size = (node.end - start - 1) / 2;
    if (bytes[start] !== 4 || size !== Math.ceil(bitLength(ec.p) / 8)) {
      throw new Error("only uncompressed EC points are supported");
    }
    return [bigFrom(bytes, start + 1, start + 1 + size), bigFrom(bytes, start + 1 + size, node.end)];
  }

  function ecPrivate(bytes, node, curveOid) {
    // SEC1 ECPrivateKey: version, d, [0] curve, [1] public point.
    const parts = derChildren(bytes, node);
    let oid = curveOid;
    let point = null;
    for (const part of parts.slice(2)) {
      const inner = derChildren(bytes, part)[0];
      if (part.tag === 0xa0) oid = hexOf(bytes, inner);
      if (part.tag === 0xa1) point = inner;
    }
    const ec = CURVES[oid];
    if (!ec) throw new Error("unsupported EC curve");
    return { type: "ec", curve: ec, d: bigFrom(bytes, parts[1].start, parts[1].end), point: point && ecPoint(bytes, point, ec) };
  }

  function rsaKey(bytes, node, isPrivate) {
    const ints = derChildren(bytes, node).map((part) => bigFrom(bytes, part.start, part.end));
    return isPrivate
      ? { type: "rsa", n: ints[1], e: ints[2], d: ints[3], p: ints[4], q: ints[5], dp: ints[6], dq: ints[7], qi: ints[8] }
      : { type: "rsa", n: ints[0], e: ints[1] };
  }

  function readKey(text, caller) {
    const match = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(String(text));
    if (!match) return null;
    const label = match[1];
    try {
      const bytes = base64Decode(match[2], caller);
      const root = derNode(bytes, 0);
      if (label === "RSA PRIVATE KEY") return rsaKey(bytes, root, true);
      if (label === "RSA PUBLIC KEY") return rsaKey(bytes, root, false);
      if (label === "EC PRIVATE KEY") return ecPrivate(bytes, root, null);
      const parts = derChildren(bytes, root);
      if (label === "PRIVATE KEY") {
        const algorithm = derChildren(bytes, parts[1]);
        const inner = derNode(bytes, parts[2].start);
        if (hexOf(bytes, algorithm[0]) === OID_RSA) return rsaKey(bytes, inner, true);
        if (hexOf(bytes, algorithm[0]) === OID_EC) return ecPrivate(bytes, inner, hexOf(bytes, algorithm[1]));
      }
      if (label === "PUBLIC KEY") {
        const algorithm = derChildren(bytes, parts[0]);
        if (hexOf(bytes, algorithm[0]) === OID_RSA) return rsaKey(bytes, derNode(bytes, parts[1].start + 1), false);
        if (hexOf(bytes, algorithm[0]) === OID_EC) {
          const ec = CURVES[hexOf(bytes, algorithm[1])];
          if (!ec) throw new Error("unsupported EC curve");
          return { type: "ec", curve: ec, point: ecPoint(bytes, parts[1], ec) };
        }
      }
    } catch (error) {
      throw jwtError("JsonWebTokenError", caller + ": the key is not a PEM key pfunc can read (" + error.message + ")");
    }
    throw jwtError("JsonWebTokenError", caller + ": unsupported key type " + JSON.stringify(label));
  }

  function bitLength(value) { return value.toString(2).length; }

  function modPow(base, exponent, modulus) {
    let result = 1n;
    base %= modulus;
    while (exponent > 0n) {
      if (exponent & 1n) result = (result * base) % modulus;
      exponent >>= 1n;
      base = (base * base) % modulus;
    }
    return result;
  }

  function mod(value, modulus) { const r = value % modulus; return r < 0n ? r + modulus : r; }

  function modInverse(value, modulus) {
    let [a, b, x, y] = [mod(value, modulus), modulus, 1n, 0n];
    while (b) { const q = a / b; [a, b] = [b, a - q * b]; [x, y] = [y, x - q * y]; }
    return mod(x, modulus);
  }

  // --- RSA PKCS#1 v1.5 ---

  const DIGEST_INFO = {
    sha256: "3031300d060960864801650304020105000420",
    sha384: "3041300d060960864801650304020205000430",
    sha512: "3051300d060960864801650304020305000440",
  };

  function rsaEncoded(hashName, message, size) {
    const digest = hexBytes(DIGEST_INFO[hashName]).concat(HASHES[hashName].fn(message));
    if (size < digest.length + 11) throw jwtError("JsonWebTokenError", "the RSA key is too short");
    return [0, 1].concat(new Array(size - digest.length - 3).fill(255), [0], digest);
  }

  function hexBytes(text) { const out = []; for (let i = 0; i < text.length; i += 2) out.push(parseInt(text.substr(i, 2), 16)); return out; }

  function rsaSign(key, hashName, message) {
    const size = Math.ceil(bitLength(key.n) / 8);
    const m = bigFrom(rsaEncoded(hashName, message, size), 0, size);
    let s;
    if (key.p && key.q && key.dp && key.dq && key.qi) { // the Chinese remainder theorem: 4x faster
      const m1 = modPow(m, key.dp, key.p);
      const m2 = modPow(m, key.dq, key.q);
      s = m2 + key.q * mod(key.qi * (m1 - m2), key.p);
    } else {
      s = modPow(m, key.d, key.n);
    }
    return bytesOf(s, size);
  }

  function rsaVerify(key, hashName, message, signature) {
    const size = Math.ceil(bitLength(key.n) / 8);
    if (signature.length !== size) return false;
    const m = modPow(bigFrom(signature, 0, size), key.e, key.n);
    return hex(bytesOf(m, size)) === hex(rsaEncoded(hashName, message, size));
  }

  // --- ECDSA ---

  function ecAdd(ec, P, Q) { // affine points; null is the point at infinity
    if (P === null) return Q;
    if (Q === null) return P;
    const p = ec.p;
    let lambda;
    if (P[0] === Q[0]) {
      if (mod(P[1] + Q[1], p) === 0n) return null;
      lambda = mod((3n * P[0] * P[0] + ec.a) * modInverse(2n * P[1], p), p);
    } else {
      lambda = mod((Q[1] - P[1]) * modInverse(Q[0] - P[0], p), p);
    }
    const x = mod(lambda * lambda - P[0] - Q[0], p);
    return [x, mod(lambda * (P[0] - x) - P[1], p)];
  }

  // Scalar multiplication in Jacobian coordinates (X/Z^2, Y/Z^3; null is infinity), so
  // that only the result needs a modular inverse: ~10x faster than affine steps.
  function jacobianDouble(ec, P) {
    if (P === null) return null;
    const p = ec.p;
    const [X, Y, Z] = P;
    if (Y === 0n) return null;
    const delta = (Z * Z) % p;
    const gamma = (Y * Y) % p;
    const beta = (X * gamma) % p;
    const alpha = (3n * mod(X - delta, p) * (X + delta)) % p; // a = -3 on these curves
    const X3 = mod(alpha * alpha - 8n * beta, p);
    const Z3 = mod((Y + Z) * (Y + Z) - gamma - delta, p);
    const Y3 = mod(alpha * (4n * beta - X3) - 8n * gamma * gamma, p);
    return [X3, Y3, Z3];
  }

  function jacobianAdd(ec, P, Q) {
    if (P === null) return Q;
    if (Q === null) return P;
    const p = ec.p;
    const [X1, Y1, Z1] = P;
    const [X2, Y2, Z2] = Q;
    const Z1Z1 = (Z1 * Z1) % p;
    const Z2Z2 = (Z2 * Z2) % p;
    const U1 = (X1 * Z2Z2) % p;
    const U2 = (X2 * Z1Z1) % p;
    const S1 = (Y1 * Z2 * Z2Z2) % p;
    const S2 = (Y2 * Z1 * Z1Z1) % p;
    const H = mod(U2 - U1, p);
    const r = mod(2n * (S2 - S1), p);
    if (H === 0n) return r === 0n ? jacobianDouble(ec, P) : null;
    const I = (4n * H * H) % p;
    const J = (H * I) % p;
    const V = (U1 * I) % p;
    const X3 = mod(r * r - J - 2n * V, p);
    const Y3 = mod(r * (V - X3) - 2n * S1 * J, p);
    const Z3 = mod(((Z1 + Z2) * (Z1 + Z2) - Z1Z1 - Z2Z2) * H, p);
    return [X3, Y3, Z3];
  }

  function ecMultiply(ec, k, P) {
    let result = null;
    for (let addend = [P[0], P[1], 1n]; k > 0n; k >>= 1n) {
      if (k & 1n) result = jacobianAdd(ec, result, addend);
      addend = jacobianDouble(ec, addend);
    }
    if (result === null) return null;
    const zInverse = modInverse(result[2], ec.p);
    const z2 = (zInverse * zInverse) % ec.p;
    return [(result[0] * z2) % ec.p, (result[1] * z2 * zInverse) % ec.p];
  }

  function hashInt(ec, digest) {
    const value = bigFrom(digest, 0, digest.length);
    const excess = digest.length * 8 - bitLength(ec.n);
    return excess > 0 ? value >> BigInt(excess) : value;
  }

  function deterministicK(ec, hashName, d, digest) { // RFC 6979, section 3.2
    const size = Math.ceil(bitLength(ec.n) / 8);
    const x = bytesOf(d, size);
    const h = bytesOf(mod(hashInt(ec, digest), ec.n), size);
    const length = HASHES[hashName].fn([]).length;
    let V = new Array(length).fill(1);
    let K = new Array(length).fill(0);
    K = hmac(hashName, K, V.concat([0], x, h));
    V = hmac(hashName, K, V);
    K = hmac(hashName, K, V.concat([1], x, h));
    V = hmac(hashName, K, V);
    for (;;) {
      let T = [];
      while (T.length < size) { V = hmac(hashName, K, V); T = T.concat(V); }
      const k = hashInt(ec, T.slice(0, size));
      if (k > 0n && k < ec.n) return k;
      K = hmac(hashName, K, V.concat([0]));
      V = hmac(hashName, K, V);
    }
  }

  function ecSign(key, hashName, message) {
    const ec = key.curve;
    const digest = HASHES[hashName].fn(message);
    const e = hashInt(ec, digest);
    const k = deterministicK(ec, hashName, key.d, digest);
    const r = mod(ecMultiply(ec, k, ec.g)[0], ec.n);
    const s = mod(modInverse(k, ec.n) * (e + r * key.d), ec.n);
    const size = Math.ceil(bitLength(ec.n) / 8);
    return bytesOf(r, size).concat(bytesOf(s, size));
  }

  function ecVerify(key, hashName, message, signature) {
    const ec = key.curve;
    const point = key.point || ecMultiply(ec, key.d, ec.g);
    const size = Math.ceil(bitLength(ec.n) / 8);
    if (signature.length !== 2 * size) return false;
    const r = bigFrom(signature, 0, size);
    const s = bigFrom(signature, size, 2 * size);
    if (r <= 0n || r >= ec.n || s <= 0n || s >= ec.n) return false;
    const w = modInverse(s, ec.n);
    const e = hashInt(ec, HASHES[hashName].fn(message));
    const X = ecAdd(ec, ecMultiply(ec, mod(e * w, ec.n), ec.g), ecMultiply(ec, mod(r * w, ec.n), point));
    return X !== null && mod(X[0], ec.n) === r;
  }

  function pkSign(algorithm, key, message) {
    const hashName = "sha" + algorithm.slice(2);
    return key.type === "rsa" ? rsaSign(key, hashName, message) : ecSign(key, hashName, message);
  }

  function pkVerify(algorithm, key, message, signature) {
    const hashName = "sha" + algorithm.slice(2);
    return key.type === "rsa" ? rsaVerify(key, hashName, message, signature) : ecVerify(key, hashName, message, signature);
  }

  // A String object (pfunc's request.body when it holds a JSON object) is the text it
  // stands for, as production's primitive body is.
  function primitive(value) { return value instanceof String ? value.valueOf() : value; }

  function signToken(payload, secret, options) {
    payload = primitive(payload);
    secret = primitive(secret);
    const objectPayload = typeof payload === "object";
    const header = Object.assign(
      { alg: options.algorithm || "HS256", typ: objectPayload ? "JWT" : undefined, kid: options.keyid }, options.header);
    const algorithm = String(header.alg);
    if (!secret && options.algorithm !== "none") throw new Error("secretOrPrivateKey must have a value");
    const material = secret ? keyMaterial(secret, "jwt.sign", true) : null;
    if (material && algorithm.slice(0, 2) === "HS" && material.kind !== "secret") {
      throw new Error("secretOrPrivateKey must be a symmetric key when using " + algorithm);
    }
    if (material && /^(RS|PS|ES)/.test(algorithm)) {
      if (material.kind !== "private") throw new Error("secretOrPrivateKey must be an asymmetric key when using " + algorithm);
      if (!options.allowInsecureKeySizes && algorithm[0] !== "E" && material.key.type === "rsa" && bitLength(material.key.n) < 2048) {
        throw new Error("secretOrPrivateKey has a minimum key size of 2048 bits for " + algorithm);
      }
    }
    if (payload === undefined) throw new Error("payload is required");
    if (objectPayload) {
      validate(CLAIMS, true, payload, "payload");
      if (!options.mutatePayload) payload = Object.assign({}, payload);
    } else {
      const misplaced = OBJECT_ONLY_OPTIONS.filter((option) => options[option] !== undefined);
      if (misplaced.length > 0) throw new Error("invalid " + misplaced.join(",") + " option for " + typeof payload + " payload");
    }
    ["expiresIn:exp", "notBefore:nbf"].forEach((pair) => {
      const [option, claim] = pair.split(":");
      if (payload[claim] !== undefined && options[option] !== undefined) {
        throw new Error('Bad "options.' + option + '" option the payload already has an "' + claim + '" property.');
      }
    });
    validate(SIGN_OPTIONS, false, options, "options");
    if (!options.allowInvalidAsymmetricKeyTypes && material) checkKeyFits(algorithm, material);
    const timestamp = payload.iat || Math.floor(Date.now() / 1000);
    if (options.noTimestamp) delete payload.iat;
    else if (objectPayload) payload.iat = timestamp;
    [["notBefore", "nbf"], ["expiresIn", "exp"]].forEach(([option, claim]) => {
      if (options[option] === undefined || (claim === "exp" && !objectPayload)) return;
      payload[claim] = timespan(options[option], timestamp);
      if (payload[claim] === undefined) throw new Error('"' + option + '"' + SPAN_HINT);
    });
    Object.keys(CLAIM_OF_OPTION).forEach((option) => {
      const claim = CLAIM_OF_OPTION[option];
      if (options[option] === undefined) return;
      if (payload[claim] !== undefined) {
        throw new Error('Bad "options.' + option + '" option. The payload already has an "' + claim + '" property.');
      }
      payload[claim] = options[option];
    });
    const body = typeof payload === "string" ? payload : JSON.stringify(payload);
    const signingInput = segment(header) + "." + base64url(utf8Encode(body));
    let signature;
    if (algorithm === "none") signature = [];
    else if (JWT_ALGORITHMS[algorithm]) signature = hmac(JWT_ALGORITHMS[algorithm], utf8Encode(material.text), utf8Encode(signingInput));
    else if (PK_ALGORITHMS.indexOf(algorithm) >= 0) signature = pkSign(algorithm, material.key, utf8Encode(signingInput));
    else throw notBuilt(algorithm, "jwt.sign");
    return signingInput + "." + base64url(signature);
  }

  function verifyToken(token, secret, options, parts, decoded) {
    const clockTimestamp = options.clockTimestamp || Math.floor(Date.now() / 1000);
    const header = decoded.header;
    const hasSignature = parts[2].trim() !== "";
    if (!hasSignature && secret) throw jwtError("JsonWebTokenError", "jwt signature is required");
    if (hasSignature && !secret) throw jwtError("JsonWebTokenError", "secret or public key must be provided");
    if (!hasSignature && !options.algorithms) {
      throw jwtError("JsonWebTokenError", 'please specify "none" in "algorithms" to verify unsigned tokens');
    }
    const material = secret ? keyMaterial(secret, "jwt.verify", false) : null;
    const algorithms = options.algorithms ||
      (material.kind === "secret" ? Object.keys(JWT_ALGORITHMS) : PK_ALGORITHMS.filter((alg) => ALGORITHMS_OF_KEY[material.key.type].indexOf(alg) >= 0));
    const algorithm = header.alg;
    if (algorithms.indexOf(algorithm) < 0) throw jwtError("JsonWebTokenError", "invalid algorithm");
    if (material && String(algorithm).slice(0, 2) === "HS" && material.kind !== "secret") {
      throw jwtError("JsonWebTokenError", "secretOrPublicKey must be a symmetric key when using " + algorithm);
    }
    if (material && /^(RS|PS|ES)/.test(algorithm) && material.kind === "secret") {
      throw jwtError("JsonWebTokenError", "secretOrPublicKey must be an asymmetric key when using " + algorithm);
    }
    if (!options.allowInvalidAsymmetricKeyTypes && material) checkKeyFits(algorithm, material);
    const signed = utf8Encode(parts[0] + "." + parts[1]);
    let valid;
    if (algorithm === "none") valid = !hasSignature;
    else if (JWT_ALGORITHMS[algorithm]) valid = base64url(hmac(JWT_ALGORITHMS[algorithm], utf8Encode(material.text), signed)) === parts[2];
    else if (PK_ALGORITHMS.indexOf(algorithm) >= 0) valid = pkVerify(algorithm, material.key, signed, base64Decode(parts[2], "jwt.verify"));
    else throw notBuilt(algorithm, "jwt.verify");
    if (!valid) throw jwtError("JsonWebTokenError", "invalid signature");
    const payload = decoded.payload;
    const tolerance = options.clockTolerance || 0;
    if (payload.nbf !== undefined && !options.ignoreNotBefore) {
      if (typeof payload.nbf !== "number") throw jwtError("JsonWebTokenError", "invalid nbf value");
      if (payload.nbf > clockTimestamp + tolerance) throw jwtError("NotBeforeError", "jwt not active", { date: new Date(payload.nbf * 1000) });
    }
    if (payload.exp !== undefined && !options.ignoreExpiration) {
      if (typeof payload.exp !== "number") throw jwtError("JsonWebTokenError", "invalid exp value");
      if (clockTimestamp >= payload.exp + tolerance) {
        throw jwtError("TokenExpiredError", "jwt expired", { expiredAt: new Date(payload.exp * 1000) });
      }
    }
    if (options.audience) {
      const wanted = [].concat(options.audience);
      const given = [].concat(payload.aud);
      const matches = given.some((aud) => wanted.some((want) => (want instanceof RegExp ? want.test(aud) : want === aud)));
      if (!matches) throw jwtError("JsonWebTokenError", "jwt audience invalid. expected: " + wanted.join(" or "));
    }
    const issuers = typeof options.issuer === "string" ? [options.issuer] : options.issuer;
    if (options.issuer && Array.isArray(issuers) && issuers.indexOf(payload.iss) < 0) {
      throw jwtError("JsonWebTokenError", "jwt issuer invalid. expected: " + options.issuer);
    }
    ["subject:sub", "jwtid:jti", "nonce:nonce"].forEach((pair) => {
      const [option, claim] = pair.split(":");
      if (options[option] && payload[claim] !== options[option]) {
        throw jwtError("JsonWebTokenError", "jwt " + option + " invalid. expected: " + options[option]);
      }
    });
    if (options.maxAge) {
      if (typeof payload.iat !== "number") throw jwtError("JsonWebTokenError", "iat required when maxAge is specified");
      const latest = timespan(options.maxAge, payload.iat);
      if (latest === undefined) throw jwtError("JsonWebTokenError", '"maxAge"' + SPAN_HINT);
      if (clockTimestamp >= latest + tolerance) {
        throw jwtError("TokenExpiredError", "maxAge exceeded", { expiredAt: new Date(latest * 1000) });
      }
    }
    return options.complete === true ? { header: header, payload: payload, signature: decoded.signature } : payload;
  }

  // sign and verify as jsonwebtoken 9: synchronous, or with a callback as the last
  // argument (options may be left out), which gets the error instead of a throw; sign's
  // callback is called after the caller's code has run on (jws signs on the next tick).
  const jwt = {
    sign: function sign(payload, secret, options, callback) {
      if (typeof options === "function") {
        callback = options;
        options = {};
      } else {
        options = options || {};
      }
      let token;
      try {
        token = signToken(payload, secret, options);
      } catch (error) {
        if (typeof callback === "function") return callback(error);
        throw error;
      }
      if (typeof callback !== "function") return token;
      Promise.resolve().then(() => callback(null, token));
      return undefined;
    },

    decode: function decode(token, options) {
      const parts = typeof token === "string" ? token.split(".") : [];
      if (parts.length !== 3) return null;
      try {
        const header = JSON.parse(utf8Decode(base64Decode(parts[0], "jwt.decode")));
        let payload = utf8Decode(base64Decode(parts[1], "jwt.decode"));
        try {
          const parsed = JSON.parse(payload);
          if (parsed !== null && typeof parsed === "object") payload = parsed;  // "5" stays a string
        } catch (error) { /* a string payload */ }
        return options && options.complete ? { header: header, payload: payload, signature: parts[2] } : payload;
      } catch (error) {
        return null;
      }
    },

    verify: function verify(token, secret, options, callback) {
      if (typeof options === "function" && !callback) {
        callback = options;
        options = {};
      }
      options = Object.assign({}, options || {});
      token = primitive(token);
      secret = primitive(secret);
      const done = (error, value) => {
        if (typeof callback === "function") return callback(error, value);
        if (error) throw error;
        return value;
      };
      if (options.clockTimestamp && typeof options.clockTimestamp !== "number") {
        return done(jwtError("JsonWebTokenError", "clockTimestamp must be a number"));
      }
      if (options.nonce !== undefined && (typeof options.nonce !== "string" || options.nonce.trim() === "")) {
        return done(jwtError("JsonWebTokenError", "nonce must be a non-empty string"));
      }
      if (options.allowInvalidAsymmetricKeyTypes !== undefined && typeof options.allowInvalidAsymmetricKeyTypes !== "boolean") {
        return done(jwtError("JsonWebTokenError", "allowInvalidAsymmetricKeyTypes must be a boolean"));
      }
      if (!token) return done(jwtError("JsonWebTokenError", "jwt must be provided"));
      if (typeof token !== "string") return done(jwtError("JsonWebTokenError", "jwt must be a string"));
      const parts = token.split(".");
      if (parts.length !== 3) return done(jwtError("JsonWebTokenError", "jwt malformed"));
      const decoded = jwt.decode(token, { complete: true });
      if (decoded === null) return done(jwtError("JsonWebTokenError", "invalid token"));
      const check = (key) => {
        let payload;
        try {
          payload = verifyToken(token, key, options, parts, decoded);
        } catch (error) {
          return done(error);
        }
        return done(null, payload);
      };
      if (typeof secret !== "function") return check(secret);
      if (typeof callback !== "function") {
        return done(jwtError("JsonWebTokenError",
          "verify must be called asynchronous if secret or public key is provided as a callback"));
      }
      return secret(decoded.header, (error, key) => (error
        ? done(jwtError("JsonWebTokenError", "error in secret or public key callback: " + error.message))
        : check(key)));
    },
  };

  // --- codecs ------------------------------------------------------------------------

  function latin1Bytes(text, caller) {
    const bytes = [];
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 255) {
        throw new Error(caller + ": the string contains characters outside Latin-1 (like btoa in browsers); " +
          "encode UTF-8 text first");
      }
      bytes.push(code);
    }
    return bytes;
  }

  const codecBase64 = {
    btoa: function btoa(text) { return base64Encode(latin1Bytes(String(text), "codec/base64.btoa")); },
    atob: function atob(text) {
      return base64Decode(text, "codec/base64.atob").map((b) => String.fromCharCode(b)).join("");
    },
    // PubNub's example: encodeString("+") is "_". pfunc maps "+" to "_" and "/" to "-".
    encodeString: function encodeString(text) { return String(text).replace(/\+/g, "_").replace(/\//g, "-"); },
    decodeString: function decodeString(text) { return String(text).replace(/_/g, "+").replace(/-/g, "/"); },
  };

  const codecAuth = {
    basic: function basic(user, password) {
      return "Basic " + base64Encode(utf8Encode(String(user) + ":" + String(password)));
    },
  };

  function decodeComponent(text) {
    try { return decodeURIComponent(text.replace(/\+/g, " ")); } catch (error) { return text; }
  }

  // A value as Node's querystring writes it: a number only if finite, and anything that
  // is not a string, number or boolean as nothing ("k=").
  function queryValue(value) {
    if (typeof value === "string") return value;
    if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
    if (typeof value === "bigint") return String(value);
    if (typeof value === "boolean") return value ? "true" : "false";
    return "";
  }

  const codecQueryString = {
    // As Node's querystring.parse, with the defaults filled in: anything but a string
    // (request.query, an object already) parses to nothing, so only the defaults remain.
    parse: function parse(text, defaults) {
      const out = {};
      const source = (typeof text === "string" ? text : "").replace(/^\?/, "");
      for (const pair of source.split("&")) {
        if (pair === "") continue;
        const at = pair.indexOf("=");
        const key = decodeComponent(at < 0 ? pair : pair.slice(0, at));
        const value = at < 0 ? "" : decodeComponent(pair.slice(at + 1));
        if (Object.prototype.hasOwnProperty.call(out, key)) out[key] = [].concat(out[key], value);
        else out[key] = value;
      }
      for (const key of Object.keys(defaults || {})) {
        if (!Object.prototype.hasOwnProperty.call(out, key)) out[key] = defaults[key];
      }
      return out;
    },
    stringify: function stringify(params) {
      if (params === null || typeof params !== "object") return "";
      const parts = [];
      for (const key of Object.keys(params)) {
        for (const value of Array.isArray(params[key]) ? params[key] : [params[key]]) {
          parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(queryValue(value)));
        }
      }
      return parts.join("&");
    },
  };

  // --- utils and advanced_math ---------------------------------------------------------

  const utils = {
    randomInt: function randomInt(min, max) {
      if (typeof min !== "number" || typeof max !== "number" || !(max > min)) {
        throw new TypeError("utils.randomInt(min, max): two numbers with min < max, got " +
          JSON.stringify([min, max]));
      }
      return Math.floor(Math.random() * (Math.ceil(max) - Math.ceil(min))) + Math.ceil(min);
    },
    isNumeric: function isNumeric(value) {
      return (typeof value === "number" || (typeof value === "string" && value.trim() !== "")) &&
        !isNaN(value) && isFinite(value);
    },
  };

  const EARTH_RADIUS_MILES = 3959;
  const advancedMath = {
    deg2rad: function deg2rad(degrees) { return degrees * Math.PI / 180; },
    getDistance: function getDistance(lat1, lon1, lat2, lon2) {
      const dLat = advancedMath.deg2rad(lat2 - lat1);
      const dLon = advancedMath.deg2rad(lon2 - lon1);
      const a = Math.sin(dLat / 2) ** 2 +
        Math.cos(advancedMath.deg2rad(lat1)) * Math.cos(advancedMath.deg2rad(lat2)) * Math.sin(dLon / 2) ** 2;
      return EARTH_RADIUS_MILES * 2 * Math.atan2(Math.sqrt(a), Math.sqrt(1 - a));
    },
  };

  // --- jsonpath (jsonpath-plus semantics, with its extensions) --------------------------
  // Nodes carry where they are (path, parent, parentProperty), so filters can use @path,
  // @parent, @property, @parentProperty and @root; `^` steps to the parent, `~` gives
  // property names, `@number()` and the other type selectors filter by type, and
  // `resultType` returns values, paths, pointers, parents, parent properties or all.

  // jsonpath-plus's forms of a path: an array of names (its first taken as the root, as
  // its toPathString does), and a string without the leading $ (read from the root; one
  // that starts with . or [ looks up the empty name first, as the library's tokens do).
  function pathText(path) {
    if (Array.isArray(path)) {
      return "$" + path.slice(1).filter((key) => !/^(~|\^|@.*?\(\))$/.test(key))
        .map((key) => (/^[0-9*]+$/.test(key) ? "[" + key + "]" : "['" + key + "']")).join("");
    }
    if (typeof path !== "string") {
      throw new TypeError("JSONPath: the path must be a string or an array, got " + JSON.stringify(path));
    }
    if (path[0] === "$") return path;
    if (path === "" || path === ".") return "$['']";
    return path[0] === "." || path[0] === "[" ? "$['']" + path : "$." + path;
  }

  function parsePath(written) {
    const path = pathText(written);
    const steps = [];
    let i = 1;
    while (i < path.length) {
      if (path[i] === "^") { steps.push({ op: "parent" }); i += 1; continue; }
      if (path[i] === "~") { steps.push({ op: "name" }); i += 1; continue; }
      const type = /^@([a-zA-Z]+)\(\)/.exec(path.slice(i));
      if (type) { steps.push({ op: "type", type: type[1] }); i += type[0].length; continue; }
      let recursive = false;
      if (path.startsWith("..", i)) { recursive = true; i += 2; }
      else if (path[i] === ".") { i += 1; }
      if (path[i] === "[") {
        let depth = 0, j = i, quote = null;
        for (; j < path.length; j++) {
          const ch = path[j];
          if (quote) { if (ch === quote && path[j - 1] !== "\\") quote = null; continue; }
          if (ch === "'" || ch === '"') quote = ch;
          else if (ch === "[") depth++;
          else if (ch === "]" && --depth === 0) break;
        }
        if (j >= path.length) throw new Error("JSONPath: unclosed [ in " + JSON.stringify(path));
        steps.push({ recursive: recursive, selector: path.slice(i + 1, j).trim() });
        i = j + 1;
      } else {
        let j = i;
        while (j < path.length && ".[^~@".indexOf(path[j]) < 0) j++;
        if (j === i && !recursive) throw new Error("JSONPath: empty segment in " + JSON.stringify(path));
        // "$.." alone: every node, the root included.
        steps.push(j > i ? { recursive: recursive, selector: path.slice(i, j), dotted: true } : { recursive: true, self: true });
        i = j;
      }
    }
    return steps;
  }

  function splitUnion(selector) {
    const parts = [];
    let current = "", quote = null, depth = 0;
    for (const ch of selector) {
      if (quote) { current += ch; if (ch === quote) quote = null; continue; }
      if (ch === "'" || ch === '"') quote = ch;
      if (ch === "(") depth++;
      if (ch === ")") depth--;
      if (ch === "," && depth === 0) { parts.push(current.trim()); current = ""; continue; }
      current += ch;
    }
    parts.push(current.trim());
    return parts;
  }

  const SCRIPT_NAMES = { "@parentProperty": "__parentProperty", "@parent": "__parent", "@property": "__property",
    "@path": "__path", "@root": "__root", "@": "__at", "$": "__root" };

  // The script with @-names (and $) renamed, outside string and regex literals.
  function scriptBody(code) {
    let out = "";
    for (let i = 0; i < code.length;) {
      const ch = code[i];
      if (ch === "'" || ch === '"' || (ch === "/" && /[(,=:!&|?]\s*$|^\s*$/.test(out))) {
        let j = i + 1;
        while (j < code.length && code[j] !== ch) j += code[j] === "\\" ? 2 : 1;
        out += code.slice(i, j + 1);
        i = j + 1;
        continue;
      }
      const name = /^(@parentProperty|@parent|@property|@path|@root|@|\$)(?![\w$])/.exec(code.slice(i)) ||
        (ch === "@" ? ["@"] : null);
      if (name) { out += SCRIPT_NAMES[name[0]]; i += name[0].length; continue; }
      out += ch;
      i += 1;
    }
    return out;
  }

  // As jsonpath-plus: in a filter, @ and @property are the item and its key, while
  // @parent and @parentProperty are the filtered container's parent and the container's key.
  function evaluateScript(code, node, root) {
    const container = node.parent;
    try {
      return new Function("__at", "__root", "__path", "__parent", "__property", "__parentProperty",
        "return (" + scriptBody(code) + ");")(
        node.value, root, pathString(node.path), container && container.parent ? container.parent.value : undefined,
        node.path[node.path.length - 1], container ? container.path[container.path.length - 1] : undefined);
    } catch (error) {
      return undefined; // a filter that cannot be evaluated on this item does not match
    }
  }

  function pathString(path) {
    return "$" + path.slice(1).map((key) => (/^[0-9*]+$/.test(String(key)) ? "[" + key + "]" : "['" + key + "']")).join("");
  }

  function pointer(path) {
    return path.slice(1).map((key) => "/" + String(key).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
  }

  function child(node, key) {
    return { value: node.value[key], path: node.path.concat([key]), parent: node };
  }

  function childrenOf(node) {
    const value = node.value;
    if (Array.isArray(value)) return value.map((item, index) => child(node, index));
    if (value !== null && typeof value === "object") return Object.keys(value).map((key) => child(node, key));
    return [];
  }

  function select(node, step, root) {
    const selector = step.selector;
    const value = node.value;
    const isObject = value !== null && typeof value === "object";
    // jsonpath-plus asks a string for its own properties too: .length, an index.
    const hasOwn = (isObject || typeof value === "string") &&
      ((name) => Object.prototype.hasOwnProperty.call(value, name));
    if (step.self) return typeof value === "object" ? [node] : []; // "$..": containers and nulls, root included
    if (selector === "*") return childrenOf(node);
    if (step.dotted) return hasOwn && hasOwn(selector) ? [child(node, selector)] : [];
    if (selector.startsWith("?(") && selector.endsWith(")")) {
      const code = selector.slice(2, -1);
      return childrenOf(node).filter((item) => evaluateScript(code, item, root));
    }
    if (selector.startsWith("(") && selector.endsWith(")")) {
      const key = evaluateScript(selector.slice(1, -1), { value: value, path: node.path, parent: null }, root);
      if (typeof key === "string") return select(node, { selector: JSON.stringify(key) }, root);
      if (hasOwn && hasOwn(key)) return [child(node, key)]; // an index of a string too
      // jsonpath-plus throws here (a TypeError of its own), so a handler sees an error.
      throw new TypeError("JSONPath: [" + selector + "] gave " + String(key) +
        ", which is not a property here (" + (Array.isArray(value) ? "a negative index or one past the end" : "not a name") + ")");
    }
    const out = [];
    for (const part of splitUnion(selector)) {
      const slice = /^(-?\d*)\s*:\s*(-?\d*)\s*(?::\s*(-?\d*))?$/.exec(part);
      if (slice && Array.isArray(value)) {
        const len = value.length, stepBy = slice[3] ? parseInt(slice[3], 10) : 1;
        let start = slice[1] === "" ? 0 : parseInt(slice[1], 10);
        let end = slice[2] === "" ? len : parseInt(slice[2], 10);
        start = start < 0 ? Math.max(0, len + start) : Math.min(start, len);
        end = end < 0 ? Math.max(0, len + end) : Math.min(end, len);
        for (let k = start; k < end; k += stepBy) out.push(child(node, k));
      } else if (/^-?\d+$/.test(part)) {
        // An own property, as jsonpath-plus looks it up: [-1] selects nothing in an array
        // (only a slice, [-1:], counts from the end). The key as written: jsonpath-plus
        // reports "2" for [2], 2 for a slice's items.
        if (hasOwn && hasOwn(part)) out.push(child(node, part));
      } else {
        const name = /^(['"])(.*)\1$/.exec(part) ? part.slice(1, -1) : part;
        if (hasOwn && hasOwn(name)) out.push(child(node, name));
      }
    }
    return out;
  }

  // The node and every object, array and null under it: jsonpath-plus's .. goes on only
  // where typeof is "object", so it never asks a string under it for an index or a length.
  function descendants(node, out) {
    out.push(node);
    for (const item of childrenOf(node)) {
      if (typeof item.value === "object") descendants(item, out);
    }
    return out;
  }

  const TYPE_TESTS = {
    number: (v) => typeof v === "number" && Number.isFinite(v),
    integer: (v) => Number.isInteger(v),
    string: (v) => typeof v === "string",
    boolean: (v) => typeof v === "boolean",
    null: (v) => v === null,
    array: (v) => Array.isArray(v),
    object: (v) => v !== null && typeof v === "object",
    scalar: (v) => v === null || (typeof v !== "object" && typeof v !== "function"),
    nonFinite: (v) => typeof v === "number" && !Number.isFinite(v),
    undefined: (v) => v === undefined,
    function: (v) => typeof v === "function",
  };

  // jsonpath-plus's two forms: JSONPath({path, json, ...}) and JSONPath(path, json) (with
  // an object first, it reads the object only, as jsonpath-plus does).
  function JSONPath(options, json) {
    if (typeof options === "string") options = { path: options, json: json };
    if (options === null || typeof options !== "object") {
      throw new TypeError("JSONPath({path, json}): pass an object with path and json, or (path, json)");
    }
    let nodes = [{ value: options.json, path: ["$"], parent: null }];
    let names = false;
    for (const step of parsePath(options.path)) {
      if (step.op === "parent") { nodes = nodes.filter((n) => n.parent).map((n) => n.parent); continue; }
      if (step.op === "name") { names = true; continue; }
      if (step.op === "type") {
        const test = TYPE_TESTS[step.type];
        if (!test) throw new Error("JSONPath: unknown type selector @" + step.type + "()");
        nodes = nodes.filter((n) => test(n.value));
        continue;
      }
      const next = [];
      for (const node of nodes) {
        const bases = step.recursive ? descendants(node, []) : [node];
        for (const base of bases) next.push(...select(base, step, options.json));
      }
      nodes = next;
    }
    const resultType = options.resultType || "value";
    const describe = {
      value: (n) => (names ? n.path[n.path.length - 1] : n.value),
      path: (n) => pathString(n.path),
      pointer: (n) => pointer(n.path),
      parent: (n) => (n.parent ? n.parent.value : null),
      // The property the node is under in its parent (jsonpath-plus's name for it).
      parentProperty: (n) => (n.parent && !names ? n.path[n.path.length - 1] : null),
      all: (n) => ({ path: pathString(n.path), value: n.value, parent: n.parent ? n.parent.value : null,
        parentProperty: n.parent ? n.path[n.path.length - 1] : null, pointer: pointer(n.path) }),
    }[resultType];
    if (!describe) throw new Error("JSONPath: unknown resultType " + JSON.stringify(resultType));
    const results = nodes.map(describe);
    if (options.wrap === false) return results.length === 0 ? undefined : results.length === 1 ? results[0] : results;
    return results;
  }

  // --- pubnub.parseToken: PubNub's v3 Access Manager token, read as the SDK reads it ---
  // (a CBOR map in URL-safe base64: pfunc/access_tokens.py writes it). Synchronous, as in
  // the JavaScript SDK, and local: it spends no operation.

  function cborDecode(bytes) {
    let at = 0;
    function need(count) {
      if (at + count > bytes.length) throw new Error("pubnub.parseToken: the token is cut short");
    }
    function unsigned(info) {
      if (info < 24) return info;
      const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
      if (!size) throw new Error("pubnub.parseToken: not a PubNub token");
      need(size);
      let value = 0;
      for (let i = 0; i < size; i++) value = value * 256 + bytes[at++];
      return value;
    }
    function item() {
      need(1);
      const head = bytes[at++];
      const major = head >> 5;
      const info = head & 31;
      if (major === 7) {
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22 || info === 23) return null;
        throw new Error("pubnub.parseToken: not a PubNub token");
      }
      const length = unsigned(info);
      if (major === 0) return length;
      if (major === 1) return -1 - length;
      if (major === 2 || major === 3) {
        need(length);
        const chunk = bytes.slice(at, at + length);
        at += length;
        return major === 3 ? utf8Decode(chunk) : { bytes: chunk };
      }
      if (major === 4) {
        const list = [];
        for (let i = 0; i < length; i++) list.push(item());
        return list;
      }
      if (major === 5) {
        const map = {};
        for (let i = 0; i < length; i++) {
          const key = item();
          map[key && key.bytes ? utf8Decode(key.bytes) : String(key)] = item();
        }
        return map;
      }
      throw new Error("pubnub.parseToken: not a PubNub token");
    }
    return item();
  }

  const TOKEN_PERMISSIONS = { read: 1, write: 2, manage: 4, delete: 8, get: 32, update: 64, join: 128 };
  const TOKEN_TYPES = { uuid: "uuids", chan: "channels", grp: "groups" };

  function tokenSection(maps) {
    const section = {};
    for (const key of Object.keys(TOKEN_TYPES)) {
      const entries = maps && maps[key];
      if (!entries || !Object.keys(entries).length) continue;
      const named = {};
      for (const name of Object.keys(entries)) {
        const flags = {};
        for (const permission of Object.keys(TOKEN_PERMISSIONS)) {
          flags[permission] = (entries[name] & TOKEN_PERMISSIONS[permission]) !== 0;
        }
        named[name] = flags;
      }
      section[TOKEN_TYPES[key]] = named;
    }
    return Object.keys(section).length ? section : undefined;
  }

  function parseToken(token) {
    if (typeof token !== "string" || !token) {
      throw new TypeError("pubnub.parseToken: pass the token text");
    }
    const data = cborDecode(base64Decode(token, "pubnub.parseToken"));
    if (!data || typeof data !== "object" || data.ttl === undefined || !data.res) {
      throw new Error("pubnub.parseToken: not a PubNub token");
    }
    const parsed = {
      version: data.v,
      timestamp: data.t,
      ttl: data.ttl,
      authorized_uuid: typeof data.uuid === "string" ? data.uuid : undefined,
    };
    const resources = tokenSection(data.res);
    const patterns = tokenSection(data.pat);
    if (resources) parsed.resources = resources;
    if (patterns) parsed.patterns = patterns;
    if (data.meta && Object.keys(data.meta).length) parsed.meta = data.meta;
    // The SDK gives the signature's bytes; here a plain array of them, so that it
    // crosses to Python handlers and JSON alike.
    if (data.sig && data.sig.bytes) parsed.signature = data.sig.bytes;
    return parsed;
  }

  return {
    pubnub: { parseToken: parseToken },
    uuid: uuid,
    jwt: jwt,
    utils: utils,
    "codec/auth": codecAuth,
    "codec/base64": codecBase64,
    "codec/query_string": codecQueryString,
    jsonpath: { JSONPath: JSONPath },
    advanced_math: advancedMath,
  };
})();
