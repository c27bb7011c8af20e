// Compiles JSON Schemas with Ajv in strict mode (draft 2020-12), the keyword files given
// making each custom keyword legitimate: registered with its own meta-schema, so a value
// outside it fails as any schema error does. Exit 0 when every schema compiles.
//   node check-schemas.mjs --keyword keywords/x-category.json schemas/*.json
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
const args = process.argv.slice(2);
const schemas = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--keyword") {
    const keyword = JSON.parse(readFileSync(args[++i], "utf8"));
    ajv.addKeyword({ keyword: keyword.keyword, metaSchema: keyword.metaSchema });
  } else {
    schemas.push(args[i]);
  }
}
let failed = 0;
for (const file of schemas) {
  try {
    const schema = JSON.parse(readFileSync(file, "utf8"));
    if (schema.$schema !== "https://json-schema.org/draft/2020-12/schema") {
      throw new Error(`$schema is ${JSON.stringify(schema.$schema)}, not draft 2020-12`);
    }
    ajv.compile(schema);
    console.log(`ok ${file}`);
  } catch (error) {
    failed++;
    console.log(`FAILED ${file}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
