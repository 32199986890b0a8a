// Export of a check's probes, phases included, in the documented record
// shape (PROTOCOL.md 3.5): CSV with one row a probe, or JSON items as
// history answers them.

const COLUMNS = ["region", "agent", "check", "gseq", "t", "rt", "sc", "st", "dn", "cn", "tl", "ft", "error"];

const cell = (v) => {
  if (v === null || v === undefined) return "";
  const s = String(v);
  // A spreadsheet runs a cell that starts like a formula (OWASP's advice).
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

/** Probes lo..hi of `series` as CSV text. */
export function csv(series, lo, hi, meta) {
  const lines = [COLUMNS.join(",")];
  for (let i = lo; i < hi; i++) {
    const r = series.record(i);
    const row = [meta.region, meta.agent, meta.check, series.gseq[i], r.t, r.rt, r.sc, r.st, r.dn, r.cn, r.tl, r.ft, r.error];
    lines.push(row.map(cell).join(","));
  }
  return `${lines.join("\n")}\n`;
}

/** Probes lo..hi of `series` as JSON items {region, agent, check, gseq, record}. */
export function json(series, lo, hi, meta) {
  const items = [];
  for (let i = lo; i < hi; i++) {
    items.push({ region: meta.region, agent: meta.agent, check: meta.check, gseq: series.gseq[i], record: series.record(i) });
  }
  return `${JSON.stringify(items, null, 1)}\n`;
}

/** Offers `text` as a file download. */
export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
