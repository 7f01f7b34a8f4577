// Sort any table.sortable by clicking a header button: numbers by their data-v value, text
// by locale; asc/desc toggle; cells with no data-v (missing) always go last. No globals.
(function () {
  "use strict";
  function key(td, type) {
    var v = td ? td.getAttribute("data-v") : null;
    if (v === null || v === "") return null;
    if (type === "num") { var x = parseFloat(v); return isNaN(x) ? null : x; }
    return v;
  }
  function sort(table, th) {
    var col = th.cellIndex, type = th.getAttribute("data-type") || "num";
    var now = th.getAttribute("aria-sort");
    var dir = now === "ascending" ? "descending" : now === "descending" ? "ascending"
            : (th.getAttribute("data-first") || "ascending");
    var sign = dir === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col], type), y = key(b.cells[col], type);
      var tie = (+a.getAttribute("data-i")) - (+b.getAttribute("data-i"));
      if (x === null || y === null) return x === y ? tie : (x === null ? 1 : -1);
      var c = type === "num" ? (x < y ? -1 : x > y ? 1 : 0) : x.localeCompare(y);
      return c === 0 ? tie : sign * c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    table.tHead.addEventListener("click", function (ev) {
      var btn = ev.target.closest("button.sort");
      if (btn) sort(table, btn.closest("th"));
    });
  });
})();
