// Validates an AsyncAPI document with the AsyncAPI parser (schema, references, semantic rules).
// Usage: node validate.mjs <document>. Exits 1 on any error-level diagnostic.
import { Parser, fromFile } from '@asyncapi/parser';

const path = process.argv[2];
if (!path) {
  console.error('usage: node validate.mjs <asyncapi document>');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
const severity = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  const where = d.path.join('.') || '(document)';
  console.log(`${severity[d.severity]}: ${where}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  console.error(`${path}: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(
  `${path}: valid AsyncAPI ${document.version()}, ` +
    `${document.messages().length} messages, ${document.operations().length} operations`,
);
