// srekit flame HTML view: search box driving the graph and the function
// table, sortable table, and the sandwich view of one function.
(function () {
	"use strict";
	var svg = document.querySelector("#flame svg");
	var q = document.getElementById("q"), ic = document.getElementById("ic"), qinfo = document.getElementById("qinfo");
	var tbody = document.querySelector("#funcs tbody");
	var rows = Array.prototype.slice.call(tbody.rows);

	function applySearch() {
		var t = q.value, re = null;
		if (t) {
			try { re = new RegExp(t, ic.checked ? "i" : ""); } catch (e) { qinfo.textContent = "bad regex: " + e.message; return; }
		}
		qinfo.textContent = "";
		if (svg && svg.flame) { if (re) svg.flame.search(t); else svg.flame.reset(); }
		var shown = 0;
		rows.forEach(function (r) {
			var ok = !re || re.test(r.cells[0].textContent);
			r.style.display = ok ? "" : "none";
			if (ok) shown++;
		});
		if (re) qinfo.textContent = shown + " functions match";
	}
	q.addEventListener("input", applySearch);
	ic.addEventListener("change", applySearch);

	// sorting: click a header
	var sortKey = "total", desc = true;
	document.querySelectorAll("#funcs th").forEach(function (th, col) {
		th.addEventListener("click", function () {
			var k = th.getAttribute("data-k");
			desc = k === sortKey ? !desc : k !== "name";
			sortKey = k;
			rows.sort(function (a, b) {
				var x = a.cells[col].textContent, y = b.cells[col].textContent;
				var c = col === 0 ? x.localeCompare(y) : parseFloat(x) - parseFloat(y);
				return desc ? -c : c;
			});
			rows.forEach(function (r) { tbody.appendChild(r); });
		});
	});

	// sandwich: callers of fn (as an icicle above it) and its callees
	var data = flameData;
	function tree() { return { v: 0, kids: {}, order: [] }; }
	function add(t, path, v) {
		t.v += v;
		for (var i = 0; i < path.length; i++) {
			var k = path[i];
			if (!t.kids[k]) { t.kids[k] = tree(); t.order.push(k); }
			t = t.kids[k];
			t.v += v;
		}
	}
	function draw(el, t, up, me) {
		el.innerHTML = "";
		var rowsOut = [];
		function walk(node, name, depth, left, total) {
			rowsOut.push({ name: name, depth: depth, left: left, width: node.v / total });
			var x = left;
			node.order.slice().sort().forEach(function (k) {
				walk(node.kids[k], k, depth + 1, x, total);
				x += node.kids[k].v / total;
			});
		}
		if (!t.v) return;
		walk(t, me, 0, 0, t.v);
		var maxDepth = 0;
		rowsOut.forEach(function (r) { if (r.depth > maxDepth) maxDepth = r.depth; });
		el.style.height = ((maxDepth + 1) * 16) + "px";
		rowsOut.forEach(function (r) {
			if (r.width < 0.002) return;
			var d = document.createElement("div");
			var name = data.names[r.depth > 0 ? r.name : me];
			d.className = "f" + (r.depth === 0 ? " me" : "");
			d.style.left = (100 * r.left) + "%";
			d.style.width = (100 * r.width) + "%";
			d.style.top = ((up ? maxDepth - r.depth : r.depth) * 16) + "px";
			d.textContent = name;
			d.title = name + " (" + (100 * r.width).toFixed(2) + "% of its " + (up ? "callers" : "callees") + ")";
			if (r.depth > 0) {
				var h = 0;
				for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
				d.style.background = "rgb(" + (205 + h % 50) + "," + (h >>> 8) % 230 + "," + (h >>> 16) % 55 + ")";
			}
			el.appendChild(d);
		});
	}
	function sandwich(fname) {
		var me = data.names.indexOf(fname);
		document.getElementById("sw-name").textContent = fname;
		var callers = tree(), callees = tree();
		if (me >= 0) {
			for (var i = 0; i < data.stacks.length; i++) {
				var s = data.stacks[i], at = s.indexOf(me);
				if (at < 0) continue;
				add(callers, s.slice(0, at).reverse(), data.values[i]);
				add(callees, s.slice(at + 1), data.values[i]);
			}
		}
		draw(document.getElementById("callers"), callers, true, me);
		draw(document.getElementById("callees"), callees, false, me);
	}
	rows.forEach(function (r) {
		r.cells[0].addEventListener("click", function () {
			rows.forEach(function (x) { x.classList.remove("sel"); });
			r.classList.add("sel");
			sandwich(r.cells[0].getAttribute("title"));
		});
	});
	if (rows.length) sandwich(rows[0].cells[0].getAttribute("title"));
})();
