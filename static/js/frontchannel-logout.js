// OpenID Connect Front-Channel Logout 1.0 section 4: once every relying party's logout
// page has loaded in its frame (or the wait is over), continue to where sign-out leads.
(function () {
  "use strict";
  var next = document.getElementById("continue");
  if (!next) {
    return;
  }
  var frames = document.querySelectorAll("iframe[data-frontchannel-logout]");
  var left = frames.length;
  var done = false;
  function go() {
    if (!done) {
      done = true;
      window.location.replace(next.getAttribute("href"));
    }
  }
  Array.prototype.forEach.call(frames, function (frame) {
    frame.addEventListener("load", function () {
      left -= 1;
      if (left <= 0) {
        go();
      }
    });
  });
  var wait = parseInt(next.getAttribute("data-wait-seconds"), 10) || 5;
  window.setTimeout(go, wait * 1000);
})();
