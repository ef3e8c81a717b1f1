// Upload forms, enhanced: files dropped on the form or chosen in it are sent one by one to the
// JSON API with a progress bar, then the page moves on. Without this script the same forms post
// to the page routes and work the same, without the progress bar.
for (const form of document.querySelectorAll("form[data-upload]")) {
  const input = form.querySelector("input[type=file]");
  const progress = form.querySelector("progress");
  const status = form.querySelector("[role=status]");
  const zone = form.querySelector(".dropzone") || form;
  const single = form.hasAttribute("data-single");
  let busy = false;

  const say = (text) => { status.textContent = text; };

  const sendOne = (file, index, total) => new Promise((resolve, reject) => {
    const data = new FormData();
    data.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.upload);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      progress.max = e.total;
      progress.value = e.loaded;
      const pct = Math.round((100 * e.loaded) / e.total);
      say(`Uploading ${file.name}${total > 1 ? ` (${index + 1} of ${total})` : ""}: ${pct}%`);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 201) {
        try { resolve(JSON.parse(xhr.responseText)); } catch { reject(new Error("The server's answer was not understood.")); }
        return;
      }
      let message = `The upload of ${file.name} failed (${xhr.status}).`;
      try { message = JSON.parse(xhr.responseText).detail || message; } catch { /* keep the default */ }
      reject(new Error(message));
    });
    xhr.addEventListener("error", () => reject(new Error(`The upload of ${file.name} failed: the connection was lost.`)));
    xhr.send(data);
  });

  const send = async (files) => {
    if (busy) return;
    const list = single ? Array.from(files).slice(0, 1) : Array.from(files);
    if (list.length === 0) { say("Choose a file first."); input.focus(); return; }
    busy = true;
    progress.hidden = false;
    let last = null;
    try {
      for (const [i, f] of list.entries()) last = await sendOne(f, i, list.length);
      say("Uploaded.");
      const next = list.length === 1 && last
        ? form.dataset.done.replace("{id}", encodeURIComponent(last.id)) + (single ? "?done=version" : "?done=uploaded")
        : window.location.pathname + window.location.search;
      window.location.assign(next);
    } catch (e) {
      say(e.message);
      progress.hidden = true;
    } finally {
      busy = false;
    }
  };

  form.addEventListener("submit", (e) => { e.preventDefault(); send(input.files); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    if (e.dataTransfer && e.dataTransfer.files.length) send(e.dataTransfer.files);
  });
}
