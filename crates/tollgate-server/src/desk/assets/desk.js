// The handoff desk's keys and live queue. No library, no build step: every
// form works without this script; it only saves keystrokes and reloads.
(() => {
  "use strict";
  const page = document.body.dataset.page;
  const typing = (el) =>
    !!el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);

  // ---- the queue: a current row, moved with j/k or the arrows
  const rows = () => Array.from(document.querySelectorAll("#rows tr.row"));
  const current = () => document.querySelector("#rows tr.row.current");
  function choose(row) {
    for (const r of rows()) r.classList.toggle("current", r === row);
    const link = row && row.querySelector("a.open");
    if (link) link.focus();
  }
  function move(step) {
    const all = rows();
    if (all.length === 0) return;
    const at = all.indexOf(current());
    const next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    choose(all[next]);
  }
  document.addEventListener("focusin", (e) => {
    const row = e.target.closest && e.target.closest("#rows tr.row");
    if (row) for (const r of rows()) r.classList.toggle("current", r === row);
  });

  // ---- the handoff page's controls
  const usable = (id) => {
    const el = document.getElementById(id);
    return el && !el.matches(":disabled") ? el : null;
  };

  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && target && target.form) {
      e.preventDefault();
      if (target.form.reportValidity()) target.form.requestSubmit();
      return;
    }
    if (typing(target)) {
      if (e.key === "Escape") target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (page === "queue") {
      if (e.key === "j" || e.key === "ArrowDown") {
        e.preventDefault();
        move(1);
      } else if (e.key === "k" || e.key === "ArrowUp") {
        e.preventDefault();
        move(-1);
      } else if (e.key === "Enter" && target === document.body && current()) {
        e.preventDefault();
        current().querySelector("a.open").click();
      } else if (e.key === "/") {
        e.preventDefault();
        document.getElementById("status").focus();
      }
      return;
    }
    if (page === "handoff") {
      const act = { c: "claim", a: "approve", d: "reason", r: "note" }[e.key];
      const el = act && usable(act);
      if (el) {
        e.preventDefault();
        if (act === "claim") el.click();
        else el.focus();
        return;
      }
    }
    if (e.key === "q" && page !== "queue" && page !== "sign-in") {
      e.preventDefault();
      window.location.assign("/desk");
    }
  });

  // ---- live queue: the server says when what we show changed; we fetch
  // the rows again (server-rendered, escaped) and keep the current row.
  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  let shown = live.dataset.hash;
  let pending = Promise.resolve();
  const refresh = (hash) => {
    pending = pending.then(async () => {
      const response = await fetch(live.dataset.rows, { credentials: "same-origin" });
      if (!response.ok || response.redirected) {
        window.location.reload();
        return;
      }
      const html = await response.text();
      const kept = current() ? current().dataset.id : null;
      const hadFocus = !!(document.activeElement && document.activeElement.closest("#rows"));
      document.getElementById("rows").innerHTML = html;
      shown = hash;
      live.textContent = "";
      const again = kept && rows().find((r) => r.dataset.id === kept);
      if (again) {
        again.classList.add("current");
        if (hadFocus) again.querySelector("a.open").focus();
      }
    }).catch(() => {
      live.textContent = "Live updates paused: the desk cannot be reached. Retrying…";
    });
  };
  const source = new EventSource(live.dataset.events + "&since=" + encodeURIComponent(shown));
  source.addEventListener("changed", (e) => {
    if (e.data !== shown) refresh(e.data);
  });
  source.addEventListener("paused", () => {
    live.textContent = "Live updates paused: the store cannot be read just now. Retrying…";
  });
  source.addEventListener("signed-out", () => {
    source.close();
    window.location.assign("/desk/sign-in?why=revoked&next=/desk");
  });
})();
