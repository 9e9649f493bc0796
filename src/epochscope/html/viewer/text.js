// Text from a run (a class, layer, metric or run name, a reader's message) as the page shows it: its control
// characters escaped, as the command line prints them (epochscope._text.printable): C0, DEL and C1 controls,
// format characters (bidirectional overrides, zero-width ones), line and paragraph separators, lone
// surrogates. A name cannot reorder, hide or break the text around it. The data keep every name exactly;
// only what is shown goes through visible(). `keep`: control characters left as they are ("\n" in text of
// several lines whose line breaks are the text's own). The viewer's first module, and joined into the
// page of `epochscope serve` too (serve/shell.js), so both show a name the same way.
const CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const SHORT = { "\n": "\\n", "\t": "\\t", "\r": "\\r" };
function visible(text, keep = "") {
  return String(text).replace(CONTROL, (c) => {
    if (keep.includes(c)) return c;
    const code = c.codePointAt(0);
    return SHORT[c] || (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
  });
}
