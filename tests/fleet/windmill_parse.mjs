// Run Windmill's own Python parser (windmill-parser-wasm-py, shipped with
// windmill-cli) on each file given; print one JSON signature per line.
import { readFileSync } from "node:fs";

const [dir, ...files] = process.argv.slice(2);
const parser = await import(`${dir}/windmill_parser_wasm.js`);
parser.initSync({ module: readFileSync(`${dir}/windmill_parser_wasm_bg.wasm`) });
for (const file of files) {
  console.log(parser.parse_python(readFileSync(file, "utf8")));
}
