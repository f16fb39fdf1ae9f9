// Marks dist/cjs as CommonJS: the package itself is "type": "module", so without
// this Node would read dist/cjs/*.js (and TypeScript dist/cjs/*.d.ts) as ESM.
import { writeFileSync } from "node:fs";

writeFileSync(new URL("../dist/cjs/package.json", import.meta.url), '{ "type": "commonjs" }\n');
