// Validates Amazon States Language definitions with @wmfs/statelint, in one Node process for many.
// stdin: a JSON array of definitions; stdout: a JSON array with one list of problems (strings) each.
// Used by tests/asl_validator.py; installed by `make test` (npm ci in this folder).
'use strict'
const stateLint = require('@wmfs/statelint')()

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => { input += chunk })
process.stdin.on('end', () => {
  const definitions = JSON.parse(input)
  const problems = definitions.map((definition) => stateLint.validate(definition))
  process.stdout.write(JSON.stringify(problems))
})
