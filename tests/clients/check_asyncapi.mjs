// Parses an AsyncAPI document with the AsyncAPI initiative's own parser and prints every
// diagnostic it reports, one JSON object per line; exits 1 when the document does not parse.
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const { document, diagnostics } = await new Parser().parse(readFileSync(process.argv[2], 'utf8'));
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
if (!document) process.exit(1);
console.log(JSON.stringify({ messages: document.allMessages().length, channels: document.channels().length }));
