"use strict";
// Tries one template pattern on one value away from the page (compose.js): a pattern of the safe subset can still
// backtrack for hours ("(a|)(a|)…b", "\d*\d*\d*…"), and this worker is ended when it takes too long.
self.onmessage = (m) => {
  self.postMessage("started");  // the page's clock starts here, not while the script loads
  let ok = false;
  try { ok = new RegExp(String(m.data.source), String(m.data.flags)).test(String(m.data.value)); } catch (e) { ok = false; }
  self.postMessage(ok === true);
};
