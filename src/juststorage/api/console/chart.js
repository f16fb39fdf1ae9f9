// The usage chart: one SVG drawn here (no library), bars per storage class for the
// bytes stored and for the monthly cost, with the numbers written next to them.

const SVG = "http://www.w3.org/2000/svg";
const COLORS = { hot: "#d9480f", cold: "#1c7ed6" };

function node(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * An <svg> of `groups`: [{title, rows: [{label, value, text}]}], each group a set of
 * horizontal bars scaled to its own largest value.
 */
export function barChart(groups, description) {
  const width = 640;
  const labelWidth = 70;
  const valueWidth = 150;
  const barArea = width - labelWidth - valueWidth - 20;
  const rowHeight = 30;
  let y = 0;
  const svg = node("svg", { role: "img", width: "100%", "aria-label": description });
  svg.append(node("title", {}, description));
  for (const group of groups) {
    y += 24;
    svg.append(node("text", { x: 0, y, class: "chart-title" }, group.title));
    y += 10;
    const max = Math.max(...group.rows.map((row) => row.value), 0);
    for (const row of group.rows) {
      const length = max > 0 ? Math.max((row.value / max) * barArea, row.value > 0 ? 2 : 0) : 0;
      const bar = node("g", { class: "chart-row", "data-class": row.label });
      bar.append(node("text", { x: 0, y: y + 19, class: "chart-label" }, row.label));
      bar.append(node("rect", {
        x: labelWidth, y: y + 4, width: length.toFixed(1), height: rowHeight - 8, rx: 3,
        fill: COLORS[row.label] || "#868e96",
      }));
      bar.append(node("text", {
        x: labelWidth + length + 8, y: y + 19, class: "chart-value",
      }, row.text));
      svg.append(bar);
      y += rowHeight;
    }
  }
  svg.setAttribute("viewBox", `0 0 ${width} ${y + 8}`);
  return svg;
}
