// Loaded first, as a classic script: records every page error so that people (and the
// end-to-end test) can see them. Errors go to window.__unetErrors; their count is mirrored in
// <html data-errors="N">.
(function () {
  "use strict";
  var errors = [];
  window.__unetErrors = errors;
  function note(kind, message) {
    var text = kind + ": " + String(message).slice(0, 500);
    errors.push(text);
    document.documentElement.setAttribute("data-errors", String(errors.length));
  }
  window.addEventListener(
    "error",
    function (e) {
      if (e.target && e.target !== window && (e.target.src || e.target.href)) {
        note("resource", e.target.src || e.target.href);
      } else {
        note("error", (e.message || "unknown") + (e.filename ? " at " + e.filename + ":" + e.lineno : ""));
      }
    },
    true
  );
  window.addEventListener("unhandledrejection", function (e) {
    var r = e.reason;
    note("unhandledrejection", (r && (r.stack || r.message)) || r);
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    note("csp", e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
  });
  var original = console.error;
  console.error = function () {
    note("console.error", Array.prototype.map.call(arguments, String).join(" "));
    return original.apply(console, arguments);
  };
})();
