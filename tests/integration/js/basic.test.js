// kafkajs 2.2.4 against a real runnel broker: admin, produce in several codecs, offsets, configs.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = require('kafkajs')
const { startBroker } = require('./broker')

test('kafkajs admin, producer and offsets', async () => {
  const broker = await startBroker()
  const kafka = new Kafka({ clientId: 'runnel-js', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  try {
    await admin.connect()
    assert.strictEqual(await admin.createTopics({ topics: [{ topic: 'js', numPartitions: 2 }] }), true)
    const topics = await admin.listTopics()
    assert.ok(topics.includes('js'))
    const meta = await admin.fetchTopicMetadata({ topics: ['js'] })
    assert.strictEqual(meta.topics[0].partitions.length, 2)

    await producer.connect()
    const base = 1650000000000
    for (const [i, compression] of [CompressionTypes.None, CompressionTypes.GZIP].entries()) {
      const res = await producer.send({
        topic: 'js',
        compression,
        acks: -1,
        messages: Array.from({ length: 50 }, (_, j) => ({
          partition: 0, key: `k${j}`, value: `v${i}-${j}`, headers: { h: `x${j}` }, timestamp: String(base + i * 100 + j)
        }))
      })
      assert.strictEqual(res[0].errorCode, 0)
      assert.strictEqual(res[0].baseOffset, String(i * 50))
    }
    const offsets = await admin.fetchTopicOffsets('js')
    const p0 = offsets.find(o => o.partition === 0)
    assert.strictEqual(p0.low, '0')
    assert.strictEqual(p0.high, '100')
    const byTime = await admin.fetchTopicOffsetsByTimestamp('js', base + 110)
    assert.strictEqual(byTime.find(o => o.partition === 0).offset, '60')

    const cfg = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'js' }], includeSynonyms: false })
    const entries = cfg.resources[0].configEntries
    assert.strictEqual(entries.find(e => e.configName === 'cleanup.policy').configValue, 'delete')
    await admin.alterConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'js', configEntries: [{ name: 'retention.ms', value: '60000' }] }] })
    const cfg2 = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'js', configNames: ['retention.ms'] }] })
    assert.strictEqual(cfg2.resources[0].configEntries[0].configValue, '60000')

    await admin.deleteTopics({ topics: ['js'] })
    assert.ok(!(await admin.listTopics()).includes('js'))
  } finally {
    await producer.disconnect().catch(() => {})
    await admin.disconnect().catch(() => {})
    await broker.stop()
  }
})
