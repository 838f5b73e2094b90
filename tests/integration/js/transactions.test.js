// kafkajs 2.2.4 transactions against a real runnel broker: a committed and an
// aborted transaction, offsets sent with a transaction (sendOffsets) visible to
// fetchOffsets only after the commit, and a read_committed consumer that sees
// only the committed messages while a read_uncommitted one sees all.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { Kafka, logLevel } = require('kafkajs')
const { startBroker } = require('./broker')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function readAll (kafka, groupId, readUncommitted, expect) {
  const c = kafka.consumer({ groupId, readUncommitted, sessionTimeout: 6000, heartbeatInterval: 500 })
  const got = []
  await c.connect()
  await c.subscribe({ topic: 'jst', fromBeginning: true })
  await c.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()) } })
  const deadline = Date.now() + 30000
  while (got.length < expect && Date.now() < deadline) await sleep(100)
  await sleep(1000) // anything more would show up now
  await c.disconnect()
  return got.sort()
}

test('kafkajs transactions', { timeout: 120000 }, async () => {
  const broker = await startBroker()
  const kafka = new Kafka({ clientId: 'runnel-js-txn', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  const producer = kafka.producer({ transactionalId: 'js-txn', idempotent: true, maxInFlightRequests: 1 })
  try {
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: 'jst', numPartitions: 2 }] })
    await producer.connect()

    let txn = await producer.transaction()
    await txn.send({ topic: 'jst', messages: [0, 1, 2, 3].map(i => ({ partition: i % 2, value: `c${i}` })) })
    await txn.sendOffsets({ consumerGroupId: 'js-src', topics: [{ topic: 'jst', partitions: [{ partition: 0, offset: '7' }] }] })
    const before = await admin.fetchOffsets({ groupId: 'js-src', topics: ['jst'] })
    assert.strictEqual(before[0].partitions.find(p => p.partition === 0).offset, '-1')
    await txn.commit()
    const after = await admin.fetchOffsets({ groupId: 'js-src', topics: ['jst'] })
    assert.strictEqual(after[0].partitions.find(p => p.partition === 0).offset, '7')

    txn = await producer.transaction()
    await txn.send({ topic: 'jst', messages: [0, 1, 2].map(i => ({ partition: i % 2, value: `a${i}` })) })
    await txn.sendOffsets({ consumerGroupId: 'js-src', topics: [{ topic: 'jst', partitions: [{ partition: 0, offset: '99' }] }] })
    await txn.abort()
    const aborted = await admin.fetchOffsets({ groupId: 'js-src', topics: ['jst'] })
    assert.strictEqual(aborted[0].partitions.find(p => p.partition === 0).offset, '7')

    assert.deepStrictEqual(await readAll(kafka, 'js-rc', false, 4), ['c0', 'c1', 'c2', 'c3'])
    assert.deepStrictEqual(await readAll(kafka, 'js-ru', true, 7), ['a0', 'a1', 'a2', 'c0', 'c1', 'c2', 'c3'])
  } finally {
    await producer.disconnect().catch(() => {})
    await admin.disconnect().catch(() => {})
    await broker.stop()
  }
})
