// The board's only script: asks before a form marked `data-confirm` destroys something. The
// board works without it (the form then posts at once).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
