// The oversight body's own check, run in its browser: is this event in that node's log?
//
// The console server only relays raw material; every judgement is made here with the
// browser's WebCrypto (SHA-256, Ed25519), so an oversight officer need not trust the
// server it is looking at:
//   1. the trust anchor (the registry's key), shown as a fingerprint to compare with the
//      published one, and compared with the one typed in when given;
//   2. the registry's directory: Ed25519 by the anchor over the exact signed bytes;
//   3. the node's checkpoint (a C2SP signed note): Ed25519 by a signing key the directory
//      lists for the agency the origin names (key ID = SHA-256(name || 0x0A || 0x01 || key)[:4]);
//   4. optionally the registry witness's cosignature (key vouched for by the anchor);
//   5. the event's leaf: SHA-256(0x00 || the stored envelope's canonical bytes);
//   6. the RFC 9162 inclusion proof from that leaf to the checkpoint's root.
// Nothing is kept: no cookie, no web storage, no URL change.
"use strict";

(() => {
  const enc = new TextEncoder();
  const WITNESS_STATEMENT = "nrm-witness-key/v1\n";

  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const b64url = (s) => {
    const t = s.replace(/-/g, "+").replace(/_/g, "/");
    return b64(t + "=".repeat((4 - (t.length % 4)) % 4));
  };
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const fromHex = (s) => {
    if (!/^([0-9a-f]{2})*$/i.test(s)) throw new Error("not hexadecimal: " + s.slice(0, 20));
    return Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  };
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const ed25519 = async (pub, sig, msg) => {
    const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, sig, msg);
  };
  const keyId = async (name, type, pub) =>
    (await sha256(concat(enc.encode(name + "\n"), Uint8Array.of(type), pub))).slice(0, 4);
  const fingerprint = async (pub) => hex(await sha256(pub)).slice(0, 32);
  const spaced = (fp) => fp.match(/.{4}/g).join(" ");

  function parseNote(note) {
    if (!note.endsWith("\n")) throw new Error("the note does not end with a newline");
    const split = note.lastIndexOf("\n\n");
    if (split < 0) throw new Error("the note has no signature block");
    const text = note.slice(0, split + 1);
    const lines = note.slice(split + 2).split("\n").slice(0, -1);
    const sigs = lines.map((line) => {
      if (!line.startsWith("\u2014 ")) throw new Error("a signature line does not start with an em dash");
      const [name, blob] = line.slice(2).split(" ");
      const raw = b64(blob);
      return { name, keyId: raw.slice(0, 4), sig: raw.slice(4) };
    });
    return { text, sigs };
  }

  function parseCheckpoint(text) {
    const [origin, size, root] = text.split("\n");
    if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error("the checkpoint size is not a number");
    return { origin, size: Number(size), root: b64(root) };
  }

  const hashLeaf = (data) => sha256(concat(Uint8Array.of(0), data));
  const hashChildren = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

  // RFC 9162, 2.1.3.2: the root an inclusion proof gives for leaf `index` of `size`.
  async function rootFromProof(index, size, leafHash, proof) {
    if (index >= size) throw new Error("the leaf index is beyond the tree size");
    let fn = index;
    let sn = size - 1;
    let r = leafHash;
    for (const p of proof) {
      if (sn === 0) throw new Error("the proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await hashChildren(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await hashChildren(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the proof is too short");
    return r;
  }

  async function check(m, pin) {
    const steps = [];
    const pass = (text) => steps.push({ ok: true, text });
    const fail = (text) => { steps.push({ ok: false, text }); throw new Error(text); };
    try {
      if (!m.anchor || !m.signed_directory) fail("no trust anchor or directory to check against");
      // 1. the anchor
      const anchorKey = b64url(m.anchor.public_key);
      const fp = await fingerprint(anchorKey);
      const wanted = (pin || "").replace(/[^0-9a-f]/gi, "").toLowerCase();
      if (wanted && wanted !== fp) fail(`the anchor's fingerprint is ${spaced(fp)}, not the one you entered`);
      pass(`trust anchor ${m.anchor.key_id} of ${m.anchor.country}, fingerprint ${spaced(fp)}` +
        (wanted ? " (matches the one you entered)" : " (compare with the published one)"));
      // 2. the directory
      const sd = m.signed_directory;
      const body = b64url(sd.directory);
      if (sd.key_id !== m.anchor.key_id) fail(`the directory is signed by key ${sd.key_id}, not the anchor's`);
      if (!(await ed25519(anchorKey, b64url(sd.signature), body))) fail("the directory's signature does not verify");
      const directory = JSON.parse(new TextDecoder().decode(body));
      if (directory.country !== m.anchor.country) fail("the directory is of another country");
      pass(`registry directory serial ${directory.serial} signed by the anchor`);
      // 3. the checkpoint
      const note = parseNote(m.note);
      const cp = parseCheckpoint(note.text);
      const parts = cp.origin.split("/");
      const agency = parts[parts.length - 1];
      const record = directory.agencies.find((a) => a.id === agency);
      if (!record) fail(`the checkpoint's origin names ${agency}, unknown to the directory`);
      if (agency !== m.agency) fail(`the checkpoint is ${agency}'s, not ${m.agency}'s`);
      if (record.country !== parts[parts.length - 2]) fail("the checkpoint's origin names another country");
      let signed = false;
      for (const k of record.keys.filter((k) => k.use === "signing")) {
        const pub = b64url(k.public_key);
        const id = await keyId(cp.origin, 1, pub);
        for (const s of note.sigs.filter((s) => s.name === cp.origin && same(s.keyId, id))) {
          if (!(await ed25519(pub, s.sig, enc.encode(note.text)))) fail(`the checkpoint's signature by key ${k.key_id} does not verify`);
          signed = true;
        }
      }
      if (!signed) fail(`the checkpoint carries no signature by a signing key of ${agency}`);
      pass(`checkpoint of ${agency}: size ${cp.size}, root ${hex(cp.root).slice(0, 16)}…, signed by ${agency}'s key`);
      // 4. the witness (a missing cosignature is reported, not failed)
      if (m.witness_key && m.witness_key.vkey) {
        const vkey = m.witness_key.vkey;
        const vouched = await ed25519(anchorKey, b64url(m.witness_key.signature), enc.encode(WITNESS_STATEMENT + vkey));
        if (!vouched) fail("the witness key is not vouched for by the anchor");
        const [wname, wid, wkey] = [vkey.split("+")[0], vkey.split("+")[1], vkey.split("+").slice(2).join("+")];
        const material = b64(wkey);
        const line = note.sigs.find((s) => s.name === wname && hex(s.keyId) === wid);
        if (!line) {
          pass(`no cosignature by the registry's witness on this checkpoint yet`);
        } else {
          const ts = new DataView(line.sig.buffer, line.sig.byteOffset, 8).getBigUint64(0);
          const msg = enc.encode(`cosignature/v1\ntime ${ts}\n` + note.text);
          if (!(await ed25519(material.slice(1), line.sig.slice(8), msg))) fail("the witness's cosignature does not verify");
          pass(`cosigned by the registry's witness at ${new Date(Number(ts) * 1000).toISOString()}`);
        }
      }
      // 5. the leaf
      const leaf = b64(m.leaf);
      const envelope = JSON.parse(new TextDecoder().decode(leaf));
      if (String(envelope.id) !== m.event_id) fail(`the leaf holds event ${envelope.id}, not ${m.event_id}`);
      const leafHash = await hashLeaf(leaf);
      pass(`leaf ${m.index}: ${envelope.type} from ${envelope.sender}, hash ${hex(leafHash).slice(0, 16)}…`);
      // 6. the inclusion proof
      if (m.size !== cp.size) fail("the proof is for another tree size than the checkpoint's");
      const root = await rootFromProof(m.index, cp.size, leafHash, m.proof.map(fromHex));
      if (!same(root, cp.root)) fail("the inclusion proof does not lead to the checkpoint's root");
      pass(`inclusion proof (${m.proof.length} hashes) leads to the signed root`);
      return { ok: true, steps };
    } catch (err) {
      if (!steps.length || steps[steps.length - 1].ok) steps.push({ ok: false, text: String(err.message || err) });
      return { ok: false, steps };
    }
  }

  function show(out, verdict, title) {
    out.replaceChildren();
    const h = document.createElement("h3");
    h.id = "proof-verdict";
    h.className = verdict.ok ? "pass" : "fail";
    h.textContent = verdict.ok ? `Verified in this browser: ${title}` : `FAILED in this browser: ${title}`;
    const ol = document.createElement("ol");
    for (const s of verdict.steps) {
      const li = document.createElement("li");
      li.className = s.ok ? "pass" : "fail";
      li.textContent = (s.ok ? "✓ " : "✗ ") + s.text;
      ol.append(li);
    }
    out.append(h, ol);
    h.tabIndex = -1;
    h.focus();
  }

  async function run(agency, eventId) {
    const panel = document.getElementById("proof-panel");
    const out = document.getElementById("proof-result");
    const pin = document.getElementById("proof-pin").value;
    out.textContent = "Checking…";
    const title = `event ${eventId} in ${agency}'s log`;
    const params = new URLSearchParams({ agency, event_id: eventId });
    let material;
    try {
      const r = await fetch(`${panel.dataset.prefix}/oversight/proof?${params}`, {
        credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
      });
      material = await r.json();
      if (!r.ok) throw new Error(material.detail || `the server answered ${r.status}`);
    } catch (err) {
      show(out, { ok: false, steps: [{ ok: false, text: `no proof material: ${err.message || err}` }] }, title);
      return;
    }
    show(out, await check(material, pin), title);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("proof-form");
    if (!form) return;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const eventId = form.elements.event_id.value.trim();
      if (eventId) run(form.elements.agency.value, eventId);
    });
    for (const button of document.querySelectorAll("button.check-event")) {
      button.addEventListener("click", () => run(button.dataset.agency, button.dataset.event));
    }
    // served disabled: a click before the listeners above exist would do nothing at all
    for (const button of document.querySelectorAll("button.check-event, #proof-form button")) {
      button.disabled = false;
    }
  });
})();
