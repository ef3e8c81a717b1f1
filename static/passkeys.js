// Passkey ceremonies for Strongroom's pages: WebAuthn needs a little JavaScript. Served as a file so
// the Content-Security-Policy can forbid inline script. Buttons declare what they do with
// data-passkey-action = register | second-factor | passwordless | reauth.
"use strict";

(function () {
  function b64urlToBuf(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function status(text) {
    const el = document.getElementById("passkey-status");
    if (el) el.textContent = text;
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.detail || data.title || "The request failed.");
    return data;
  }

  async function register() {
    const nameEl = document.getElementById("passkey-name");
    const name = (nameEl && nameEl.value) || "Passkey";
    const options = await post("/api/v1/me/passkeys/register/start");
    const pk = options.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach((c) => (c.id = b64urlToBuf(c.id)));
    const cred = await navigator.credentials.create({ publicKey: pk });
    const credential = {
      id: cred.id,
      rawId: bufToB64url(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {
        attestationObject: bufToB64url(cred.response.attestationObject),
        clientDataJSON: bufToB64url(cred.response.clientDataJSON),
        transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
      },
    };
    await post("/api/v1/me/passkeys/register/finish", { name: name, credential: credential });
    window.location.assign("/account");
  }

  async function authenticate(startUrl, finishUrl, next) {
    const challenge = await post(startUrl);
    const pk = challenge.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => (c.id = b64urlToBuf(c.id)));
    const cred = await navigator.credentials.get({ publicKey: pk });
    const r = cred.response;
    const credential = {
      id: cred.id,
      rawId: bufToB64url(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {
        authenticatorData: bufToB64url(r.authenticatorData),
        clientDataJSON: bufToB64url(r.clientDataJSON),
        signature: bufToB64url(r.signature),
        userHandle: r.userHandle ? bufToB64url(r.userHandle) : null,
      },
    };
    const done = await post(finishUrl, { ceremony_id: challenge.ceremony_id, credential: credential });
    // An account whose deletion is scheduled lands where it can cancel it.
    const leaving = done && done.user && done.user.deletion_scheduled_for;
    window.location.assign(leaving ? "/account#your-data" : next);
  }

  document.addEventListener("click", function (ev) {
    const btn = ev.target.closest("[data-passkey-action]");
    if (!btn) return;
    ev.preventDefault();
    if (!window.PublicKeyCredential) {
      status("This browser does not support passkeys.");
      return;
    }
    const action = btn.getAttribute("data-passkey-action");
    status("Waiting for your passkey…");
    let run;
    if (action === "register") run = register();
    else if (action === "reauth")
      run = authenticate("/api/v1/me/reauthenticate/passkey/start", "/api/v1/me/reauthenticate/passkey/finish", "/account?confirmed=1");
    else run = authenticate("/api/v1/auth/passkey/start", "/api/v1/auth/passkey/finish", "/");
    run.catch((e) => status(e.message || "The passkey was not accepted."));
  });
})();
