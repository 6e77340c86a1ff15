// Validates one CSAF 2.0 document with BSI's CSAF validator library
// (@secvisogram/csaf-validator-lib, installed by `npm ci` in this folder from the committed
// package-lock.json): the strict CSAF 2.0 JSON schema plus every mandatory test (6.1.x),
// i.e. the library's `basic.js` set.
//
// Usage: node csaf.mjs FILE|-
//   Exit 0: valid. Exit 1: invalid, one line per error ("test: path: message").
//   Exit 2: cannot validate (library missing, unreadable or non-JSON input): tests/export.rs
//   counts that as a failure, never as a skip.
// Usage: node csaf.mjs --lines
//   Reads one JSON document per line on stdin and answers each with one line of JSON,
//   {"code": 0|1|2, "text": "..."} (the codes above). Loading the library takes seconds
//   (it compiles the schema), so tests/export.rs keeps one such process per test binary.
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

function cannot(msg) {
  console.error(`csaf.mjs: ${msg}`)
  process.exit(2)
}

let basic, validateStrict
try {
  basic = await import('@secvisogram/csaf-validator-lib/basic.js')
  validateStrict = (await import('@secvisogram/csaf-validator-lib/validateStrict.js')).default
} catch (e) {
  cannot(`the validator library is missing (${e.code ?? e.message}): run tests/lib/install-deps.sh`)
}

const tests = Object.values(basic)
// Fewer tests than the library's mandatory set would make a pass vacuous.
if (tests.length < 30) cannot(`only ${tests.length} tests found in basic.js`)

/** Validates one document's text: [code, text] as described at the top. */
async function check(text) {
  let doc
  try {
    doc = JSON.parse(text)
  } catch (e) {
    return [2, `csaf.mjs: not JSON: ${e.message}`]
  }
  let result
  try {
    result = await validateStrict(tests, doc)
  } catch (e) {
    return [2, `csaf.mjs: the validator failed: ${e.stack ?? e}`]
  }
  const lines = []
  for (const t of result.tests) {
    for (const e of t.errors ?? []) {
      lines.push(`${t.name}: ${e.instancePath || '(root)'}: ${e.message}`)
    }
  }
  return [result.isValid ? 0 : 1, lines.join('\n')]
}

const file = process.argv[2]
if (!file) cannot('usage: node csaf.mjs FILE|- or node csaf.mjs --lines')
if (file === '--lines') {
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    const [code, text] = await check(line)
    process.stdout.write(JSON.stringify({ code, text }) + '\n')
  }
} else {
  let text
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8')
  } catch (e) {
    cannot(`cannot read ${file}: ${e.message}`)
  }
  const [code, out] = await check(text)
  if (out) (code === 2 ? console.error : console.log)(out)
  process.exit(code)
}
