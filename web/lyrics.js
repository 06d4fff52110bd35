// Lyrics helpers: turns plain or sectioned lyrics into LRC, spreading untimed lines evenly over
// the song, and keeps the mapping back to the lines the person typed (for the server's errors).
(function (root) {
  "use strict";
  const kTimestamp = /^\s*\[\d{1,3}:\d{2}(?:\.\d{1,3})?\]/;
  const kSection = /^\s*\[[^\]]*\]\s*$|^\s*\((?:verse|chorus|bridge|intro|outro|pre-chorus)[^)]*\)\s*$/i;

  function formatTime(seconds) {
    const total = Math.max(0, Math.round(seconds * 100));
    const mm = String(Math.floor(total / 6000)).padStart(2, "0");
    const ss = String(Math.floor((total % 6000) / 100)).padStart(2, "0");
    const cc = String(total % 100).padStart(2, "0");
    return "[" + mm + ":" + ss + "." + cc + "]";
  }

  /// {lrc, lineMap}: lineMap[n] is the typed line (1-based) of LRC line n. Text with any
  /// timestamp is sent as typed (the person chose the times). Otherwise every sung line gets a
  /// time, evenly from 8 s to 12 s before the end; section headers and blank lines are dropped.
  function toLrc(text, lengthSeconds) {
    const lines = text.replace(/\r\n?/g, "\n").split("\n");
    if (lines.some((l) => kTimestamp.test(l))) {
      return { lrc: lines.join("\n"), lineMap: lines.map((_, i) => i + 1), stamped: false };
    }
    const sung = [];
    lines.forEach((l, i) => {
      const t = l.trim();
      if (t && !kSection.test(t)) sung.push({ text: t, line: i + 1 });
    });
    const start = 8;
    const end = Math.max(start + 1, lengthSeconds - 12);
    const step = sung.length > 1 ? (end - start) / (sung.length - 1) : 0;
    const out = [];
    const lineMap = [];
    sung.forEach((s, i) => {
      out.push(formatTime(start + i * step) + s.text);
      lineMap.push(s.line);
    });
    return { lrc: out.join("\n"), lineMap: lineMap, stamped: true };
  }

  /// The typed line a server message "line N: ..." points at, or 0.
  function errorLine(message, lineMap) {
    const m = /^line (\d+):\s*/i.exec(message || "");
    if (!m) return 0;
    const n = Number(m[1]);
    return lineMap && lineMap[n - 1] ? lineMap[n - 1] : n;
  }

  root.SongLyrics = { toLrc: toLrc, errorLine: errorLine, formatTime: formatTime };
})(typeof window !== "undefined" ? window : globalThis);
