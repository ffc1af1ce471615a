/* Click-to-sort tables (class "sortable"), offline and from file://.
 * A cell's data-sort-value holds its number ("" when missing); other cells sort by text.
 * Missing values ("" or "—") always go last; equal values keep their current order.
 * Also the leaderboard's column switches (below): one script for the tables of the site. */
(function () {
  "use strict";

  function sortKey(cell) {
    if (!cell) return null;
    if (cell.hasAttribute("data-sort-value")) {
      var raw = cell.getAttribute("data-sort-value");
      var number = parseFloat(raw);
      return raw === "" || isNaN(number) ? null : number;
    }
    var text = cell.textContent.trim();
    return text === "" || text === "\u2014" ? null : text.toLowerCase();
  }

  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  function sortTable(table, header, direction) {
    var body = table.tBodies[0];
    var column = header.cellIndex;
    var sign = direction === "ascending" ? 1 : -1;
    var entries = Array.prototype.map.call(body.rows, function (row, position) {
      return { row: row, key: sortKey(row.cells[column]), position: position };
    });
    entries.sort(function (a, b) {
      if ((a.key === null) !== (b.key === null)) return a.key === null ? 1 : -1;
      var order = a.key === null ? 0 : sign * compare(a.key, b.key);
      return order || a.position - b.position;
    });
    entries.forEach(function (entry) { body.appendChild(entry.row); });
    Array.prototype.forEach.call(header.parentNode.cells, function (th) {
      if (th !== header) th.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", direction);
  }

  function nextDirection(header) {
    var current = header.getAttribute("aria-sort");
    if (current === "ascending") return "descending";
    if (current === "descending") return "ascending";
    return header.getAttribute("data-first-sort") === "descending" ? "descending" : "ascending";
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header) {
      var button = header.querySelector("button");
      if (!button) return;
      button.addEventListener("click", function () {
        sortTable(table, header, nextDirection(header));
      });
    });
  });
})();

/* The leaderboard's column switches ("more metrics", "training and speed"): the page hides and shows the
 * columns by CSS alone (style.css, :has()); this script remembers each switch in localStorage, so a reader who
 * opened the other metrics finds them open on every board and on the next visit. Offline and from file://;
 * where storage is refused (a private window), the switches still work for the page. */
(function () {
  "use strict";
  var PREFIX = "colorbench.columns.";

  function stored(key) {
    try { return window.localStorage.getItem(PREFIX + key); } catch (error) { return null; }
  }

  function store(key, shown) {
    try { window.localStorage.setItem(PREFIX + key, shown ? "shown" : "hidden"); } catch (error) { /* not kept */ }
  }

  var switches = Array.prototype.slice.call(document.querySelectorAll("input.show-columns"));
  switches.forEach(function (box) {
    var key = box.getAttribute("data-columns");
    var saved = stored(key);
    if (saved !== null) box.checked = saved === "shown";
    box.addEventListener("change", function () {
      store(key, box.checked);
      switches.forEach(function (other) {  // the same switch on every board of the page
        if (other !== box && other.getAttribute("data-columns") === key) other.checked = box.checked;
      });
    });
  });
})();
