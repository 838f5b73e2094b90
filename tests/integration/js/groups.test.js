// kafkajs 2.2.4 consumer groups against a real runnel broker: two consumers
// share a topic (nothing read twice or missed), commits come back from
// fetchOffsets, describeGroup shows members and assignments, a third member
// joining moves partitions, and deleteGroups removes the group once it is empty.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { Kafka, logLevel } = require('kafkajs')
const { startBroker } = require('./broker')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function waitFor (cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await cond()) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

test('kafkajs consumer group', { timeout: 180000 }, async () => {
  const broker = await startBroker()
  const kafka = new Kafka({ clientId: 'runnel-js-groups', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  const producer = kafka.producer()
  const consumers = []
  try {
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: 'jsg', numPartitions: 6 }] })
    await producer.connect()

    const seen = []
    const assigned = new Map()
    const makeConsumer = async (name) => {
      const c = kafka.consumer({ groupId: 'js-group', sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000 })
      c.on(c.events.GROUP_JOIN, e => { assigned.set(name, e.payload.memberAssignment.jsg || []) })
      await c.connect()
      await c.subscribe({ topic: 'jsg', fromBeginning: true })
      await c.run({
        eachMessage: async ({ partition, message }) => { seen.push({ name, partition, value: message.value.toString() }) }
      })
      consumers.push(c)
      return c
    }
    await makeConsumer('a')
    await makeConsumer('b')
    await waitFor(() => assigned.size === 2 && [...assigned.values()].every(p => p.length === 3), 60000, 'two members with three partitions')
    const union = [...assigned.values()].flat().sort()
    assert.deepStrictEqual(union, [0, 1, 2, 3, 4, 5])

    await producer.send({ topic: 'jsg', messages: Array.from({ length: 300 }, (_, i) => ({ partition: i % 6, value: `m${i}` })) })
    await waitFor(() => seen.length >= 300, 60000, '300 messages')
    await sleep(500)
    const values = seen.map(s => s.value)
    assert.strictEqual(values.length, 300)
    assert.strictEqual(new Set(values).size, 300) // nothing twice, nothing missed
    for (const s of seen) assert.ok(assigned.get(s.name).includes(s.partition))

    // kafkajs commits after each batch (autoCommit): offsets reach the end
    await waitFor(async () => {
      const offs = await admin.fetchOffsets({ groupId: 'js-group', topics: ['jsg'] })
      return offs[0].partitions.every(p => p.offset === '50')
    }, 30000, 'committed offsets')

    const desc = await admin.describeGroups(['js-group'])
    const g = desc.groups[0]
    assert.strictEqual(g.state, 'Stable')
    assert.strictEqual(g.protocolType, 'consumer')
    assert.strictEqual(g.members.length, 2)
    for (const m of g.members) {
      assert.strictEqual(m.clientId, 'runnel-js-groups')
      assert.ok(m.memberAssignment.length > 0)
    }
    const listed = await admin.listGroups()
    assert.ok(listed.groups.some(x => x.groupId === 'js-group' && x.protocolType === 'consumer'))

    // a third member: the group rebalances to 2 + 2 + 2
    await makeConsumer('c')
    await waitFor(() => assigned.size === 3 && [...assigned.values()].every(p => p.length === 2), 60000, 'three members with two partitions')
    assert.deepStrictEqual([...assigned.values()].flat().sort(), [0, 1, 2, 3, 4, 5])

    // deleting a group with members fails; once they are gone it works
    await assert.rejects(admin.deleteGroups(['js-group']))
    for (const c of consumers.splice(0)) await c.disconnect()
    await admin.deleteGroups(['js-group'])
    const after = await admin.fetchOffsets({ groupId: 'js-group', topics: ['jsg'] })
    assert.ok(after[0].partitions.every(p => p.offset === '-1'))
  } finally {
    for (const c of consumers) await c.disconnect().catch(() => {})
    await producer.disconnect().catch(() => {})
    await admin.disconnect().catch(() => {})
    const code = await broker.stop()
    assert.strictEqual(code, 0)
  }
})
