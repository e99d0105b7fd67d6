// Copy the npm packages the pages use into static/vendor, so Studio serves every asset itself.
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const vendor = join(root, "static", "vendor");

const files = {
  "bootstrap/dist/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
  "bootstrap/dist/css/bootstrap.min.css.map": "bootstrap/bootstrap.min.css.map",
  "bootstrap/dist/js/bootstrap.bundle.min.js": "bootstrap/bootstrap.bundle.min.js",
  "bootstrap/dist/js/bootstrap.bundle.min.js.map": "bootstrap/bootstrap.bundle.min.js.map",
  "bootstrap-icons/font/bootstrap-icons.min.css": "bootstrap-icons/bootstrap-icons.min.css",
  "bootstrap-icons/font/fonts": "bootstrap-icons/fonts",
  "htmx.org/dist/htmx.min.js": "htmx/htmx.min.js",
  // the strict build: no eval/new Function, so it runs under our CSP (script-src 'self')
  "plotly.js-strict-dist-min/plotly-strict.min.js": "plotly/plotly.min.js",
};

rmSync(vendor, { recursive: true, force: true });
for (const [from, to] of Object.entries(files)) {
  const target = join(vendor, to);
  mkdirSync(dirname(target), { recursive: true });
  cpSync(join(modules, from), target, { recursive: true });
}
writeFileSync(join(vendor, ".complete"), new Date().toISOString() + "\n");
console.log(`vendored ${Object.keys(files).length} assets into ${vendor}`);
