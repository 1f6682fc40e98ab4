// Progressive enhancement only: every page works without this file.
"use strict";

// A button with data-confirm asks before its form is sent.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// A form is sent once: its buttons are disabled while the next page loads.
document.addEventListener("submit", (event) => {
  if (event.defaultPrevented) return;
  for (const button of event.target.querySelectorAll("button[type=submit]")) {
    // Deferred, so that the submitter's own value is still sent.
    setTimeout(() => { button.disabled = true; }, 0);
  }
});
