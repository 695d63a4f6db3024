// srekit flame graph interaction: details on hover, click to zoom, regex
// search (Ctrl-F), case toggle (Ctrl-I), with zoom and search kept in the URL.
// It works on the <svg> that holds it, standalone or inline in a page.
(function () {
	"use strict";
	var cfg = flameConfig;
	var script = document.currentScript;
	var svg = (script && script.closest) ? script.closest("svg") : null;
	if (!svg) svg = document.getElementsByTagName("svg")[0];
	function byId(id) { return svg.querySelector("#" + id); }
	var frames = [];      // every frame, with its original geometry
	var byKey = {};       // "x,y" -> frame, to restore a zoom from the URL
	var root = null;
	var details, unzoomBtn, searchBtn, icBtn, matched;
	var term = null, ignoreCase = false, zoomed = null;
	var fudge = 0.0001;

	function setText(el, s) { if (el) el.textContent = s; }

	// name is the frame's title without the trailing "(count ...)".
	function titleName(t) {
		var i = t.lastIndexOf(" (");
		return i >= 0 ? t.substring(0, i) : t;
	}
	function titleCount(t) {
		var m = /\(([-0-9,]+) /.exec(t.substring(t.lastIndexOf(" (")));
		return m ? parseFloat(m[1].replace(/,/g, "")) : 0;
	}

	function init() {
		details = byId("details"); unzoomBtn = byId("unzoom"); searchBtn = byId("search");
		icBtn = byId("ignorecase"); matched = byId("matched");
		var gs = byId("frames").children;
		for (var i = 0; i < gs.length; i++) {
			var g = gs[i], r = g.querySelector("rect"), t = g.querySelector("text");
			var title = g.querySelector("title").textContent;
			var f = {
				g: g, rect: r, text: t, title: title,
				name: titleName(title), count: titleCount(title),
				xs: r.getAttribute("x"), ys: r.getAttribute("y"),
				x: parseFloat(r.getAttribute("x")), w: parseFloat(r.getAttribute("width")),
				y: parseFloat(r.getAttribute("y")), fill: r.getAttribute("fill"),
				trim: g.classList.contains("trim")
			};
			if (f.name === "all" && (!root || f.w > root.w)) root = f;
			frames.push(f);
			byKey[r.getAttribute("x") + "," + r.getAttribute("y")] = f;
		}
		var p = params();
		if (p.ic) { ignoreCase = true; icBtn.classList.add("show"); }
		if (p.x && p.y && byKey[p.x + "," + p.y]) zoom(byKey[p.x + "," + p.y]);
		if (p.s) search(p.s); else if (cfg.search) search(cfg.search);
	}

	function frameOf(el) {
		while (el && el !== svg) {
			if (el.parentNode && el.parentNode.id === "frames") {
				for (var i = 0; i < frames.length; i++) if (frames[i].g === el) return frames[i];
				return null;
			}
			el = el.parentNode;
		}
		return null;
	}

	// URL state: x, y (zoomed frame), s (search), ic (ignore case).
	function params() {
		var out = {}, q = window.location.search.substring(1).split("&");
		for (var i = 0; i < q.length; i++) {
			var kv = q[i].split("=");
			if (kv[0]) out[kv[0]] = kv.length > 1 ? decodeURIComponent(kv[1]) : "1";
		}
		return out;
	}
	function saveParams(p) {
		var parts = [];
		for (var k in p) if (p.hasOwnProperty(k) && p[k] !== undefined) parts.push(k + "=" + encodeURIComponent(p[k]));
		var url = window.location.pathname + (parts.length ? "?" + parts.join("&") : "") + window.location.hash;
		try { history.replaceState(null, "", url); } catch (e) { /* file: URLs may refuse */ }
	}
	function setParam(k, v) { var p = params(); if (v === null) delete p[k]; else p[k] = v; saveParams(p); }

	function label(f, w) {
		if (f.trim) return "";
		var chars = Math.floor(w / (cfg.fontsize * cfg.fontwidth));
		var name = f.name.replace(/_\[[kwij]\]$/, "");
		if (chars < 3) return "";
		if (name.length <= chars) return name;
		return name.substring(0, chars - 2) + "..";
	}
	function place(f, x, w) {
		f.rect.setAttribute("x", x.toFixed(1));
		f.rect.setAttribute("width", w.toFixed(1));
		f.text.setAttribute("x", (x + 3).toFixed(2));
		f.text.textContent = label(f, w);
	}

	function zoom(z) {
		var full = svg.viewBox.baseVal.width - 2 * cfg.xpad;
		var xmin = z.x, xmax = z.x + z.w, ratio = full / z.w;
		zoomed = z;
		unzoomBtn.classList.remove("hide");
		for (var i = 0; i < frames.length; i++) {
			var f = frames[i];
			f.g.classList.remove("hide", "parent");
			var above = cfg.inverted ? f.y < z.y : f.y > z.y;
			if (above) {
				if (f.x <= xmin + fudge && f.x + f.w + fudge >= xmax) {
					f.g.classList.add("parent");
					place(f, cfg.xpad, full);
				} else {
					f.g.classList.add("hide");
				}
			} else if (f.x + fudge >= xmin && f.x + f.w <= xmax + fudge) {
				place(f, (f.x - xmin) * ratio + cfg.xpad, f.w * ratio);
			} else {
				f.g.classList.add("hide");
			}
		}
		if (z === root) { unzoom(); return; }
		var p = params(); p.x = z.xs; p.y = z.ys; saveParams(p);
	}
	function unzoom() {
		zoomed = null;
		unzoomBtn.classList.add("hide");
		for (var i = 0; i < frames.length; i++) {
			var f = frames[i];
			f.g.classList.remove("hide", "parent");
			place(f, f.x, f.w);
		}
		var p = params(); delete p.x; delete p.y; saveParams(p);
	}

	function search(t) {
		var re;
		try { re = new RegExp(t, ignoreCase ? "i" : ""); } catch (e) { setText(matched, "Bad regex: " + e.message); return; }
		clearSearch(true);
		term = t;
		var hits = [];
		for (var i = 0; i < frames.length; i++) {
			var f = frames[i];
			if (f === root || f.trim) continue;
			if (re.test(f.name)) {
				f.rect.setAttribute("fill", cfg.searchcolor);
				hits.push(f);
			}
		}
		// share of the total in matched frames, counting nested matches once
		hits.sort(function (a, b) { return a.x - b.x || b.w - a.w; });
		var sum = 0, end = -1;
		for (var j = 0; j < hits.length; j++) {
			if (hits[j].x >= end - fudge) { sum += hits[j].count; end = hits[j].x + hits[j].w; }
		}
		var pct = root && root.count > 0 ? 100 * sum / root.count : 0;
		setText(matched, "Matched: " + (pct === 100 ? "100" : pct.toFixed(1)) + "%");
		matched.classList.remove("hide");
		searchBtn.classList.add("show");
		setText(searchBtn, "Reset Search");
		setParam("s", t);
	}
	function clearSearch(keepUI) {
		for (var i = 0; i < frames.length; i++) frames[i].rect.setAttribute("fill", frames[i].fill);
		if (keepUI) return;
		term = null;
		searchBtn.classList.remove("show");
		setText(searchBtn, "Search");
		setText(matched, " ");
		setParam("s", null);
	}
	function promptSearch() {
		if (term !== null) { clearSearch(false); return; }
		var t = prompt("Search for a regex (e.g. ^ext4_)" + (ignoreCase ? ", ignoring case" : "") +
			"\nCtrl-I toggles case sensitivity", "");
		if (t) search(t);
	}
	function toggleCase() {
		ignoreCase = !ignoreCase;
		icBtn.classList.toggle("show", ignoreCase);
		setParam("ic", ignoreCase ? "1" : null);
		if (term !== null) search(term);
	}

	svg.addEventListener("click", function (e) {
		var f = frameOf(e.target);
		if (f) { zoom(f); return; }
		var id = e.target.id;
		if (id === "unzoom") unzoom();
		else if (id === "search") promptSearch();
		else if (id === "ignorecase") toggleCase();
	});
	svg.addEventListener("mouseover", function (e) {
		var f = frameOf(e.target);
		if (f) setText(details, cfg.nametype + " " + f.title);
	});
	svg.addEventListener("mouseout", function (e) {
		if (frameOf(e.target)) setText(details, " ");
	});
	window.addEventListener("keydown", function (e) {
		if (e.keyCode === 114 || (e.ctrlKey && e.keyCode === 70)) { e.preventDefault(); promptSearch(); }
		else if (e.ctrlKey && e.keyCode === 73) { e.preventDefault(); toggleCase(); }
	});
	svg.flame = { search: search, zoom: function (i) { zoom(frames[i]); }, unzoom: unzoom, reset: function () { clearSearch(false); } };
	init(); // the script comes after the frames
})();
