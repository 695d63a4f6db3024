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

// Save the model in the editor under a name (PUT needs the write token).
(function () {
  var btn = document.getElementById('loops-save');
  if (!btn) return;
  btn.addEventListener('click', async function () {
    var name = document.getElementById('loops-save-name').value.trim();
    var status = document.getElementById('loops-status');
    try {
      await srekit.api('PUT', '/api/v1/loops/models/' + encodeURIComponent(name), document.getElementById('loops-source').value, 'application/yaml');
      status.textContent = 'saved as ' + name;
      status.className = 'ok';
      status.id = 'loops-status';
    } catch (e) {
      status.textContent = e.message;
      status.className = 'error';
    }
  });
})();
