// Starts a real runnel broker on 127.0.0.1 with a fresh data dir, for kafkajs tests.
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..', '..', '..')
const BIN = process.env.RUNNEL_BIN || path.join(ROOT, 'build', 'dev', 'runnel')

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

function canConnect (port) {
  return new Promise(resolve => {
    const c = net.connect(port, '127.0.0.1')
    c.on('connect', () => { c.destroy(); resolve(true) })
    c.on('error', () => resolve(false))
  })
}

async function startBroker (overrides = {}) {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runnel-js-'))
  const args = ['broker',
    '--override', `listeners=PLAINTEXT://127.0.0.1:${port}`,
    '--override', `log.dirs=${dir}/data`,
    '--override', 'metrics.listeners=',
    '--override', 'group.initial.rebalance.delay.ms=0']
  for (const [k, v] of Object.entries(overrides)) args.push('--override', `${k}=${v}`)
  const log = fs.openSync(path.join(dir, 'broker.log'), 'a')
  const proc = spawn(BIN, args, { stdio: ['ignore', log, log] })
  let exited = null
  proc.on('exit', code => { exited = code })
  const deadline = Date.now() + 30000
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`broker exited ${exited}: ` + fs.readFileSync(path.join(dir, 'broker.log'), 'utf8'))
    if (await canConnect(port)) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    bootstrap: `127.0.0.1:${port}`,
    dir,
    async stop () {
      if (exited !== null) return exited
      const done = new Promise(resolve => proc.on('exit', code => resolve(code)))
      proc.kill('SIGTERM')
      const code = await done
      fs.closeSync(log)
      if (code !== 0) throw new Error(`broker exited ${code}: ` + fs.readFileSync(path.join(dir, 'broker.log'), 'utf8').slice(-4000))
      fs.rmSync(dir, { recursive: true, force: true })
      return code
    }
  }
}

module.exports = { startBroker }
