// Renders every `[data-figure]` element from the json_script figure it names, with Plotly.react.
// Charts in hidden tabs wait until they are shown (plotly measures its container when it draws);
// content swapped in later is rendered too; every chart follows its container's width.
//
// Load this file BEFORE plotly.min.js: it prepares plotly for our Content-Security-Policy
// (style-src 'self', no inline styles), which plotly otherwise breaks in three ways, each a console
// error: it injects <style> elements (its own rules, which studio.css carries instead, and a map
// library's), and it sets `style` attributes on a few SVG elements.
(function () {
  "use strict";

  // 1. plotly skips its global <style> when an element with this id has the class no-inline-styles.
  if (!document.getElementById("plotly.js-style-global")) {
    const marker = document.createElement("meta");
    marker.id = "plotly.js-style-global";
    marker.className = "no-inline-styles";
    document.head.append(marker);
  }
  // 2. Other <style> elements plotly adds to <head> (maplibre's, per-plot rules) would be refused.
  const appendToHead = document.head.appendChild.bind(document.head);
  document.head.appendChild = function (node) {
    return node instanceof HTMLStyleElement ? node : appendToHead(node);
  };
  // 3. A style attribute set from script is refused; the same declarations through CSSOM are not.
  const setAttribute = Element.prototype.setAttribute;
  SVGElement.prototype.setAttribute = function (name, value) {
    if (String(name).toLowerCase() === "style") {
      this.style.cssText = String(value);
      return;
    }
    setAttribute.call(this, name, value);
  };

  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function isVisible(element) {
    return element.offsetParent !== null && element.clientWidth > 0;
  }

  function draw(element) {
    const source = document.getElementById(element.dataset.figure);
    if (!source) return;
    let figure;
    try {
      figure = JSON.parse(source.textContent);
    } catch (error) {
      element.textContent = "This chart could not be read.";
      return;
    }
    const layout = Object.assign({ autosize: true }, figure.layout || {});
    delete layout.width; // the container decides the width
    const config = Object.assign({}, CONFIG, figure.config || {});
    window.Plotly.react(element, figure.data || [], layout, config);
    element.dataset.rendered = "true";
  }

  function render(root) {
    if (typeof window.Plotly === "undefined") return;
    const scope = root && root.querySelectorAll ? root : document;
    const elements = Array.from(scope.querySelectorAll("[data-figure]"));
    if (scope.matches && scope.matches("[data-figure]")) elements.push(scope);
    for (const element of elements) {
      if (!isVisible(element)) continue;
      if (element.dataset.rendered === "true") window.Plotly.Plots.resize(element);
      else draw(element);
    }
  }

  window.StudioCharts = { render };

  // Bootstrap tabs and collapses: draw (or re-measure) the charts that just became visible.
  document.addEventListener("shown.bs.tab", (event) => {
    const selector = event.target.dataset.bsTarget || event.target.getAttribute("href");
    const target = selector ? document.querySelector(selector) : null;
    if (target) render(target);
  });
  document.addEventListener("shown.bs.collapse", (event) => render(event.target));

  // Plotly loads after this file: draw once the document is parsed, then whatever htmx swaps in.
  if (window.htmx) {
    window.htmx.onLoad((element) => render(element));
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => render(document));
  } else {
    window.setTimeout(() => render(document));
  }
})();
