// Hovering a loop (table row, dominance period or label) picks out its links in the diagram.
(function () {
  var svg = document.querySelector('svg.cld');
  if (!svg) return;
  function focus(id) {
    svg.classList.toggle('focus', !!id);
    svg.querySelectorAll('.link, .loop-label').forEach(function (el) {
      var on = id && ((el.dataset.loops || '').split(' ').indexOf(id) >= 0 || el.dataset.loop === id);
      el.classList.toggle('on', !!on);
    });
  }
  document.querySelectorAll('[data-loop]').forEach(function (el) {
    if (svg.contains(el) && !el.classList.contains('loop-label')) return;
    el.addEventListener('mouseenter', function () { focus(el.dataset.loop); });
    el.addEventListener('mouseleave', function () { focus(''); });
    el.addEventListener('click', function () { focus(el.dataset.loop); });
  });
})();
