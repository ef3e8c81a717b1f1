// Board cards: drag and drop, and Alt+arrow keys, to move a card between and within columns.
// Plain ES module, no dependencies. The DOM moves at once; if the server refuses, the card goes back.
// Server text is only ever set with textContent, and state is shown by toggling classes (strict CSP).

document.documentElement.classList.add("js-enabled");

const board = document.getElementById("board");
const api = board && board.dataset.moveApi;
if (board && api) init();

function init() {
  const statusEl = document.getElementById("board-status");
  const pending = new Set(); // cards whose move request has not answered yet
  let dragged = null;
  let statusTimer = 0;

  // Links and images would otherwise be dragged themselves instead of their card.
  board.querySelectorAll(".card a, .card img").forEach((el) => { el.draggable = false; });
  board.querySelectorAll('.card[draggable="true"] > a').forEach((a) => {
    a.setAttribute("aria-keyshortcuts", "Alt+ArrowUp Alt+ArrowDown Alt+ArrowLeft Alt+ArrowRight");
  });

  const cardsOf = (list) => Array.from(list.querySelectorAll(":scope > .card"));
  const nextCard = (card) => { let n = card.nextElementSibling; while (n && !n.matches(".card")) n = n.nextElementSibling; return n; };
  const prevCard = (card) => { let p = card.previousElementSibling; while (p && !p.matches(".card")) p = p.previousElementSibling; return p; };
  const elOf = (ev) => (ev.target instanceof Element ? ev.target : ev.target && ev.target.parentElement) || null; // Firefox may target text
  const titleOf = (card) => { const a = card.querySelector("a"); return (a ? a.textContent : card.textContent).trim(); };

  // The column's name is its heading without the count.
  function columnName(column) {
    const h = column.querySelector("h2");
    if (!h) return column.dataset.status || "";
    let name = "";
    h.childNodes.forEach((n) => { if (n.nodeType === Node.TEXT_NODE || (n.nodeType === Node.ELEMENT_NODE && !n.matches(".count, .meta"))) name += n.textContent; });
    return name.replace(/\s+/g, " ").trim();
  }

  function bumpCount(column, delta) {
    const el = column.querySelector(".count");
    if (!el) return;
    const n = parseInt(el.textContent, 10);
    el.textContent = String(Number.isNaN(n) ? cardsOf(column.querySelector(".cards")).length : Math.max(0, n + delta));
  }

  function announce(text, isError) {
    if (!statusEl) return;
    clearTimeout(statusTimer);
    statusEl.classList.toggle("is-error", isError);
    statusEl.textContent = text;
    statusTimer = setTimeout(() => { statusEl.textContent = ""; }, isError ? 15000 : 6000);
  }

  // Put card in list before `before` (null: at the end); focus follows if the card had it.
  function place(card, list, before) {
    const hadFocus = card.contains(document.activeElement);
    list.insertBefore(card, before);
    if (hadFocus) (card.querySelector("a") || card).focus();
  }

  async function move(card, list, before) {
    if (pending.has(card) || before === card) return;
    const fromList = card.parentElement;
    const fromNext = nextCard(card);
    if (list === fromList && before === fromNext) return; // same place: nothing to do
    const fromCol = fromList.closest(".column");
    const toCol = list.closest(".column");

    place(card, list, before);
    if (fromCol !== toCol) { bumpCount(fromCol, -1); bumpCount(toCol, +1); }

    const after = nextCard(card);
    const body = { status: toCol.dataset.status, before_id: after ? after.dataset.itemId : null };
    pending.add(card);
    card.setAttribute("aria-busy", "true");
    let message = "Could not move the card. Try again.";
    let ok = false;
    try {
      const res = await fetch(api + encodeURIComponent(card.dataset.itemId) + "/move", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      ok = res.ok;
      if (!ok) {
        const problem = await res.json().catch(() => null);
        if (problem && typeof problem.detail === "string" && problem.detail.trim()) message = problem.detail;
      }
    } catch (_) {
      // network error: keep the generic message
    }
    pending.delete(card);
    card.removeAttribute("aria-busy");

    if (ok) {
      announce(`Moved “${titleOf(card)}” to ${columnName(toCol)}.`, false);
      return;
    }
    // Put it back next to the same neighbour (or last, if that neighbour has left the column since).
    place(card, fromList, fromNext && fromNext.parentElement === fromList ? fromNext : null);
    if (fromCol !== toCol) { bumpCount(toCol, -1); bumpCount(fromCol, +1); }
    announce(message, true);
  }

  // ---- Drag and drop ----
  function clearMarks() {
    board.querySelectorAll(".drop-target, .drop-before, .drop-end").forEach((el) => {
      el.classList.remove("drop-target", "drop-before", "drop-end");
    });
  }

  // Where the dragged card would land: before the first card whose middle is below the pointer.
  function dropPoint(ev) {
    const el = elOf(ev);
    const column = el && el.closest(".column");
    const list = column && column.querySelector(".cards");
    if (!list) return null;
    const before = cardsOf(list).find((c) => {
      if (c === dragged) return false;
      const r = c.getBoundingClientRect();
      return ev.clientY < r.top + r.height / 2;
    }) || null;
    return { column, list, before };
  }

  board.addEventListener("dragstart", (ev) => {
    const el = elOf(ev);
    const card = el && el.closest(".card");
    if (!card || card.getAttribute("draggable") !== "true" || pending.has(card)) {
      if (card) ev.preventDefault();
      return;
    }
    dragged = card;
    ev.dataTransfer.effectAllowed = "move";
    ev.dataTransfer.setData("text/plain", titleOf(card)); // Firefox needs some data to start a drag
    requestAnimationFrame(() => { if (dragged === card) card.classList.add("dragging"); });
  });

  board.addEventListener("dragover", (ev) => {
    if (!dragged) return;
    const point = dropPoint(ev);
    if (!point) { clearMarks(); return; }
    ev.preventDefault(); // allows the drop here
    ev.dataTransfer.dropEffect = "move";
    const target = point.before || point.list;
    const cls = point.before ? "drop-before" : "drop-end";
    if (point.column.classList.contains("drop-target") && target.classList.contains(cls)) return; // unchanged
    clearMarks();
    point.column.classList.add("drop-target");
    target.classList.add(cls);
  });

  board.addEventListener("dragleave", (ev) => {
    if (dragged && !(ev.relatedTarget instanceof Node && board.contains(ev.relatedTarget))) clearMarks();
  });

  board.addEventListener("drop", (ev) => {
    if (!dragged) return;
    ev.preventDefault();
    const point = dropPoint(ev);
    const card = dragged;
    clearMarks();
    if (point) move(card, point.list, point.before);
  });

  board.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    clearMarks();
  });

  // ---- Keyboard: Alt+Up/Down within the column, Alt+Left/Right to the end of the next column ----
  board.addEventListener("keydown", (ev) => {
    if (!ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    if (!["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"].includes(ev.key)) return;
    const el = elOf(ev);
    const card = el && el.closest(".card");
    if (!card || card.getAttribute("draggable") !== "true" || el.closest("form, input, select, textarea")) return;
    ev.preventDefault(); // Alt+Left would otherwise go back in history
    const list = card.parentElement;
    if (ev.key === "ArrowUp") {
      const prev = prevCard(card);
      if (prev) move(card, list, prev);
    } else if (ev.key === "ArrowDown") {
      const next = nextCard(card);
      if (next) move(card, list, nextCard(next));
    } else {
      const columns = Array.from(board.querySelectorAll(".column"));
      const to = columns[columns.indexOf(card.closest(".column")) + (ev.key === "ArrowLeft" ? -1 : 1)];
      const toList = to && to.querySelector(".cards");
      if (toList) move(card, toList, null);
    }
  });
}
