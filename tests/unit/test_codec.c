/*
 * Unit tests for the generated protocol codec (src/protocol/rn_msg_gen.*) and
 * the request/response headers (rn_header.*).
 *
 * Round trips: init, fill, encode, decode, compare fields, then re-encode the
 * decoded struct and require the same bytes. Byte-exact checks against
 * encodings worked out by hand from the schemas. Hostile input: truncation at
 * every byte, absurd array counts, nulls where the version forbids them,
 * unknown tagged fields.
 *
 * With RN_WRITE_SEEDS=<dir> in the environment, the seeds test also writes the
 * fuzz seed corpus (header + body per file) into <dir>.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_arena.h"
#include "rn_bytes.h"
#include "rn_header.h"
#include "rn_msg_gen.h"
#include "rn_test.h"

#define ARENA_MAX (1u << 20)

/* One test's state: an output buffer, a second one for re-encoding, an arena. */
typedef struct {
    rn_buf_t b, b2;
    rn_arena_t arena;
    rn_reader_t r;
} fx_t;

static void fx_init(fx_t *fx) {
    rn_buf_init(&fx->b, 1u << 24);
    rn_buf_init(&fx->b2, 1u << 24);
    rn_arena_init(&fx->arena, ARENA_MAX);
}

static void fx_free(fx_t *fx) {
    rn_buf_free(&fx->b);
    rn_buf_free(&fx->b2);
    rn_arena_reset(&fx->arena);
}

static void fx_reset(fx_t *fx) {
    rn_buf_reset(&fx->b);
    rn_buf_reset(&fx->b2);
    rn_arena_reset(&fx->arena);
}

static rn_reader_t *fx_reader(fx_t *fx) {
    rn_reader_init(&fx->r, fx->b.data, fx->b.len);
    return &fx->r;
}

#define STR(s) RN_STR_LIT(s)
#define ASSERT_STR(a, lit) ASSERT_TRUE(rn_str_eq_cstr((a), (lit)))
#define ASSERT_NULLSTR(a) ASSERT_EQ((a).len, -1)

/*
 * Encode M at version v from `in`, decode into `out`, require the whole input
 * consumed, re-encode `out` into b2 and require identical bytes.
 */
#define ROUNDTRIP(fx, M, v, in, out)                                                   \
    do {                                                                               \
        rn_##M##_encode(&(fx)->b, (v), (in));                                          \
        ASSERT_EQ(rn_buf_err(&(fx)->b), RN_OK);                                        \
        rn_reader_t *r_ = fx_reader(fx);                                               \
        ASSERT_EQ(rn_##M##_decode(r_, (v), &(fx)->arena, (out)), RN_OK);               \
        ASSERT_EQ(rn_reader_remaining(r_), 0);                                         \
        rn_##M##_encode(&(fx)->b2, (v), (out));                                        \
        ASSERT_EQ(rn_buf_err(&(fx)->b2), RN_OK);                                       \
        ASSERT_EQ((fx)->b2.len, (fx)->b.len);                                          \
        if ((fx)->b.len) ASSERT_MEMEQ((fx)->b2.data, (fx)->b.data, (fx)->b.len);       \
    } while (0)

/* Every strict prefix of the encoding in fx->b must fail to decode, cleanly. */
#define ASSERT_PREFIXES_FAIL(fx, M, v)                                                 \
    do {                                                                               \
        for (size_t n_ = 0; n_ < (fx)->b.len; n_++) {                                  \
            rn_arena_t a_;                                                             \
            rn_arena_init(&a_, ARENA_MAX);                                             \
            rn_reader_t r_;                                                            \
            rn_reader_init(&r_, (fx)->b.data, n_);                                     \
            rn_##M##_t m_;                                                             \
            rn_err_t e_ = rn_##M##_decode(&r_, (v), &a_, &m_);                         \
            rn_arena_reset(&a_);                                                       \
            if (e_ == RN_OK) RN_TEST_FAIL_("prefix %zu of %zu decoded", n_, (fx)->b.len); \
        }                                                                              \
    } while (0)

/* ---------------------------------------------------------------- Produce */

static const uint8_t batch_a[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t batch_b[] = {0xaa, 0xbb};

static void fill_produce(rn_ProduceRequest_t *m, rn_ProduceRequest_TopicProduceData_t topics[2],
                         rn_ProduceRequest_PartitionProduceData_t parts[3]) {
    rn_ProduceRequest_init(m);
    m->TransactionalId = STR("txn-1");
    m->Acks = -1;
    m->TimeoutMs = 30000;
    for (int i = 0; i < 2; i++) rn_ProduceRequest_TopicProduceData_init(&topics[i]);
    for (int i = 0; i < 3; i++) rn_ProduceRequest_PartitionProduceData_init(&parts[i]);
    topics[0].Name = STR("orders");
    topics[0].PartitionData_count = 2;
    topics[0].PartitionData = parts;
    topics[1].Name = STR("payments");
    topics[1].PartitionData_count = 1;
    topics[1].PartitionData = parts + 2;
    parts[0].Index = 0;
    parts[0].Records = (rn_records_t){batch_a, sizeof(batch_a), NULL, 0};
    parts[1].Index = 7;
    parts[1].Records = (rn_records_t){NULL, -1, NULL, 0};
    parts[2].Index = 3;
    parts[2].Records = (rn_records_t){batch_b, sizeof(batch_b), NULL, 0};
    m->TopicData_count = 2;
    m->TopicData = topics;
}

RN_TEST(produce_v3_v9_roundtrip) {
    fx_t fx;
    fx_init(&fx);
    int16_t versions[] = {3, 9, 11};
    for (size_t k = 0; k < sizeof(versions) / sizeof(versions[0]); k++) {
        int16_t v = versions[k];
        fx_reset(&fx);
        rn_ProduceRequest_t in, out;
        rn_ProduceRequest_TopicProduceData_t topics[2];
        rn_ProduceRequest_PartitionProduceData_t parts[3];
        fill_produce(&in, topics, parts);
        ROUNDTRIP(&fx, ProduceRequest, v, &in, &out);
        ASSERT_STR(out.TransactionalId, "txn-1");
        ASSERT_EQ(out.Acks, -1);
        ASSERT_EQ(out.TimeoutMs, 30000);
        ASSERT_EQ(out.TopicData_count, 2);
        ASSERT_STR(out.TopicData[0].Name, "orders");
        ASSERT_STR(out.TopicData[1].Name, "payments");
        ASSERT_EQ(out.TopicData[0].PartitionData_count, 2);
        ASSERT_EQ(out.TopicData[0].PartitionData[1].Index, 7);
        ASSERT_EQ(out.TopicData[0].PartitionData[1].Records.len, -1);
        rn_records_t rec = out.TopicData[0].PartitionData[0].Records;
        ASSERT_EQ(rec.len, (int32_t)sizeof(batch_a));
        ASSERT_MEMEQ(rec.ptr, batch_a, sizeof(batch_a));
        /* zero copy: the records point into the input */
        ASSERT_TRUE(rec.ptr >= fx.b.data && rec.ptr + rec.len <= fx.b.data + fx.b.len);
        ASSERT_EQ(out.TopicData[1].PartitionData[0].Index, 3);
        ASSERT_PREFIXES_FAIL(&fx, ProduceRequest, v);
    }
    /* v0-2 have no TransactionalId: it is skipped, decodes as the default (null) */
    fx_reset(&fx);
    rn_ProduceRequest_t in, out;
    rn_ProduceRequest_TopicProduceData_t topics[2];
    rn_ProduceRequest_PartitionProduceData_t parts[3];
    fill_produce(&in, topics, parts);
    ROUNDTRIP(&fx, ProduceRequest, 2, &in, &out);
    ASSERT_NULLSTR(out.TransactionalId);
    fx_free(&fx);
}

RN_TEST(produce_response_v9_tagged_struct) {
    fx_t fx;
    fx_init(&fx);
    rn_ProduceResponse_t in, out;
    rn_ProduceResponse_init(&in);
    rn_ProduceResponse_TopicProduceResponse_t t;
    rn_ProduceResponse_TopicProduceResponse_init(&t);
    rn_ProduceResponse_PartitionProduceResponse_t p[2];
    rn_ProduceResponse_PartitionProduceResponse_init(&p[0]);
    rn_ProduceResponse_PartitionProduceResponse_init(&p[1]);
    ASSERT_EQ(p[0].LogAppendTimeMs, -1);
    ASSERT_EQ(p[0].LogStartOffset, -1);
    ASSERT_NULLSTR(p[0].ErrorMessage);
    ASSERT_EQ(p[0].CurrentLeader.LeaderId, -1);
    p[0].Index = 1;
    p[0].BaseOffset = 1000;
    p[1].Index = 2;
    p[1].ErrorCode = RN_ERR_NOT_LEADER_OR_FOLLOWER;
    p[1].ErrorMessage = STR("not leader");
    p[1].CurrentLeader.LeaderId = 3;
    p[1].CurrentLeader.LeaderEpoch = 9;
    t.Name = STR("orders");
    t.PartitionResponses_count = 2;
    t.PartitionResponses = p;
    in.Responses_count = 1;
    in.Responses = &t;
    in.ThrottleTimeMs = 5;
    ROUNDTRIP(&fx, ProduceResponse, 10, &in, &out);
    ASSERT_EQ(out.ThrottleTimeMs, 5);
    rn_ProduceResponse_PartitionProduceResponse_t *q = out.Responses[0].PartitionResponses;
    ASSERT_EQ(q[0].BaseOffset, 1000);
    ASSERT_EQ(q[0].CurrentLeader.LeaderId, -1);
    ASSERT_EQ(q[1].ErrorCode, RN_ERR_NOT_LEADER_OR_FOLLOWER);
    ASSERT_STR(q[1].ErrorMessage, "not leader");
    ASSERT_EQ(q[1].CurrentLeader.LeaderId, 3);
    ASSERT_EQ(q[1].CurrentLeader.LeaderEpoch, 9);
    fx_free(&fx);
}

/* --------------------------------------------------------------- Metadata */

RN_TEST(metadata_request_v1_v9_v12) {
    fx_t fx;
    fx_init(&fx);
    rn_MetadataRequest_t in, out;
    rn_MetadataRequest_MetadataRequestTopic_t topics[2];
    rn_MetadataRequest_init(&in);
    ASSERT_TRUE(in.AllowAutoTopicCreation); /* default "true" */
    for (int i = 0; i < 2; i++) rn_MetadataRequest_MetadataRequestTopic_init(&topics[i]);
    topics[0].Name = STR("a");
    topics[1].Name = STR("bb");
    topics[1].TopicId[0] = 0x42;
    topics[1].TopicId[15] = 0x24;
    in.Topics_count = 2;
    in.Topics = topics;
    in.AllowAutoTopicCreation = false;
    in.IncludeTopicAuthorizedOperations = true;

    ROUNDTRIP(&fx, MetadataRequest, 1, &in, &out);
    ASSERT_EQ(out.Topics_count, 2);
    ASSERT_STR(out.Topics[1].Name, "bb");
    ASSERT_EQ(out.Topics[1].TopicId[0], 0); /* TopicId is v10+ */
    ASSERT_TRUE(out.AllowAutoTopicCreation); /* v4+: default */
    ASSERT_FALSE(out.IncludeTopicAuthorizedOperations);

    fx_reset(&fx);
    ROUNDTRIP(&fx, MetadataRequest, 9, &in, &out);
    ASSERT_FALSE(out.AllowAutoTopicCreation);
    ASSERT_TRUE(out.IncludeTopicAuthorizedOperations);
    ASSERT_PREFIXES_FAIL(&fx, MetadataRequest, 9);

    /* v12: topic by id with a null name */
    fx_reset(&fx);
    topics[1].Name = RN_STR_NULL;
    ROUNDTRIP(&fx, MetadataRequest, 12, &in, &out);
    ASSERT_NULLSTR(out.Topics[1].Name);
    ASSERT_EQ(out.Topics[1].TopicId[0], 0x42);
    ASSERT_EQ(out.Topics[1].TopicId[15], 0x24);

    /* null topic list (all topics) is allowed from v1 */
    fx_reset(&fx);
    in.Topics_count = -1;
    in.Topics = NULL;
    ROUNDTRIP(&fx, MetadataRequest, 1, &in, &out);
    ASSERT_EQ(out.Topics_count, -1);
    fx_reset(&fx);
    ROUNDTRIP(&fx, MetadataRequest, 12, &in, &out);
    ASSERT_EQ(out.Topics_count, -1);
    fx_free(&fx);
}

RN_TEST(metadata_response_v1_v9_v12) {
    fx_t fx;
    fx_init(&fx);
    rn_MetadataResponse_t in, out;
    rn_MetadataResponse_init(&in);
    rn_MetadataResponse_MetadataResponseBroker_t brokers[2];
    for (int i = 0; i < 2; i++) {
        rn_MetadataResponse_MetadataResponseBroker_init(&brokers[i]);
        brokers[i].NodeId = i + 1;
        brokers[i].Host = STR("localhost");
        brokers[i].Port = 9092 + i;
    }
    brokers[1].Rack = STR("rack-b");
    rn_MetadataResponse_MetadataResponsePartition_t parts[1];
    rn_MetadataResponse_MetadataResponsePartition_init(&parts[0]);
    int32_t replicas[] = {1, 2}, isr[] = {1};
    parts[0].PartitionIndex = 0;
    parts[0].LeaderId = 1;
    parts[0].LeaderEpoch = 4;
    parts[0].ReplicaNodes_count = 2;
    parts[0].ReplicaNodes = replicas;
    parts[0].IsrNodes_count = 1;
    parts[0].IsrNodes = isr;
    rn_MetadataResponse_MetadataResponseTopic_t topic;
    rn_MetadataResponse_MetadataResponseTopic_init(&topic);
    ASSERT_EQ(topic.TopicAuthorizedOperations, INT32_MIN);
    topic.Name = STR("orders");
    topic.TopicId[3] = 3;
    topic.Partitions_count = 1;
    topic.Partitions = parts;
    in.Brokers_count = 2;
    in.Brokers = brokers;
    in.ClusterId = STR("cluster-x");
    in.ControllerId = 1;
    in.Topics_count = 1;
    in.Topics = &topic;

    int16_t versions[] = {1, 9, 12};
    for (size_t k = 0; k < 3; k++) {
        int16_t v = versions[k];
        fx_reset(&fx);
        ROUNDTRIP(&fx, MetadataResponse, v, &in, &out);
        ASSERT_EQ(out.Brokers_count, 2);
        ASSERT_STR(out.Brokers[0].Host, "localhost");
        ASSERT_EQ(out.Brokers[1].Port, 9093);
        ASSERT_NULLSTR(out.Brokers[0].Rack);
        ASSERT_STR(out.Brokers[1].Rack, "rack-b");
        ASSERT_EQ(out.ControllerId, 1);
        if (v >= 2)
            ASSERT_STR(out.ClusterId, "cluster-x");
        else
            ASSERT_NULLSTR(out.ClusterId);
        ASSERT_EQ(out.Topics[0].Partitions[0].ReplicaNodes_count, 2);
        ASSERT_EQ(out.Topics[0].Partitions[0].ReplicaNodes[1], 2);
        ASSERT_EQ(out.Topics[0].Partitions[0].IsrNodes[0], 1);
        ASSERT_EQ(out.Topics[0].Partitions[0].LeaderEpoch, v >= 7 ? 4 : -1);
        ASSERT_EQ(out.Topics[0].TopicId[3], v >= 10 ? 3 : 0);
        ASSERT_EQ(out.Topics[0].Partitions[0].OfflineReplicas_count, 0);
        ASSERT_PREFIXES_FAIL(&fx, MetadataResponse, v);
    }
    fx_free(&fx);
}

/* ------------------------------------------------------------------ Fetch */

RN_TEST(fetch_request_v4_v12_v15_tagged) {
    fx_t fx;
    fx_init(&fx);
    rn_FetchRequest_t in, out;
    rn_FetchRequest_init(&in);
    ASSERT_EQ(in.MaxBytes, 0x7fffffff);
    ASSERT_EQ(in.ReplicaId, -1);
    ASSERT_EQ(in.SessionEpoch, -1);
    ASSERT_NULLSTR(in.ClusterId);
    rn_FetchRequest_FetchTopic_t topic;
    rn_FetchRequest_FetchTopic_init(&topic);
    rn_FetchRequest_FetchPartition_t parts[2];
    for (int i = 0; i < 2; i++) {
        rn_FetchRequest_FetchPartition_init(&parts[i]);
        parts[i].Partition = i;
        parts[i].FetchOffset = 100 * i;
        parts[i].PartitionMaxBytes = 1 << 20;
    }
    parts[1].CurrentLeaderEpoch = 5;
    topic.Topic = STR("orders");
    topic.Partitions_count = 2;
    topic.Partitions = parts;
    in.MaxWaitMs = 500;
    in.MinBytes = 1;
    in.MaxBytes = 52428800;
    in.IsolationLevel = 1;
    in.Topics_count = 1;
    in.Topics = &topic;
    in.RackId = STR("r1");

    ROUNDTRIP(&fx, FetchRequest, 4, &in, &out);
    ASSERT_EQ(out.ReplicaId, -1);
    ASSERT_EQ(out.MaxWaitMs, 500);
    ASSERT_EQ(out.MaxBytes, 52428800);
    ASSERT_EQ(out.IsolationLevel, 1);
    ASSERT_EQ(out.SessionEpoch, -1); /* v7+ */
    ASSERT_EQ(out.RackId.len, 0);    /* v11+ */
    ASSERT_EQ(out.Topics[0].Partitions[1].FetchOffset, 100);
    ASSERT_EQ(out.Topics[0].Partitions[1].CurrentLeaderEpoch, -1); /* v9+ */
    ASSERT_PREFIXES_FAIL(&fx, FetchRequest, 4);

    /* v12: tagged ClusterId (tag 0) present only because it is non-null */
    fx_reset(&fx);
    size_t len_untagged;
    rn_FetchRequest_encode(&fx.b, 12, &in);
    len_untagged = fx.b.len;
    ASSERT_EQ(fx.b.data[fx.b.len - 1], 0); /* empty tag section at the end */
    fx_reset(&fx);
    in.ClusterId = STR("c");
    ROUNDTRIP(&fx, FetchRequest, 12, &in, &out);
    ASSERT_EQ(fx.b.len, len_untagged + 4); /* count 1, tag 0, size 2, "c" (compact) */
    const uint8_t tail[] = {0x01, 0x00, 0x02, 0x02, 'c'};
    ASSERT_MEMEQ(fx.b.data + fx.b.len - sizeof(tail), tail, sizeof(tail));
    ASSERT_STR(out.ClusterId, "c");
    ASSERT_STR(out.RackId, "r1");
    ASSERT_EQ(out.Topics[0].Partitions[1].CurrentLeaderEpoch, 5);
    ASSERT_PREFIXES_FAIL(&fx, FetchRequest, 12);

    /* v15: ReplicaId moves into the tagged ReplicaState struct */
    fx_reset(&fx);
    uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    memcpy(topic.TopicId, id, 16);
    in.ReplicaState.ReplicaId = 2;
    in.ReplicaState.ReplicaEpoch = 77;
    ROUNDTRIP(&fx, FetchRequest, 15, &in, &out);
    ASSERT_EQ(out.ReplicaState.ReplicaId, 2);
    ASSERT_EQ(out.ReplicaState.ReplicaEpoch, 77);
    ASSERT_EQ(out.ReplicaId, -1);
    ASSERT_MEMEQ(out.Topics[0].TopicId, id, 16);
    ASSERT_EQ(out.Topics[0].Topic.len, 0); /* name is v0-12 */
    ASSERT_STR(out.ClusterId, "c");

    /* v17: a tagged uuid inside each partition */
    fx_reset(&fx);
    parts[0].ReplicaDirectoryId[7] = 0x77;
    ROUNDTRIP(&fx, FetchRequest, 17, &in, &out);
    ASSERT_EQ(out.Topics[0].Partitions[0].ReplicaDirectoryId[7], 0x77);
    ASSERT_EQ(out.Topics[0].Partitions[1].ReplicaDirectoryId[7], 0);
    fx_free(&fx);
}

RN_TEST(fetch_response_v4_v12_tagged_and_file_records) {
    fx_t fx;
    fx_init(&fx);
    rn_FetchResponse_t in, out;
    rn_FetchResponse_init(&in);
    rn_FetchResponse_FetchableTopicResponse_t topic;
    rn_FetchResponse_FetchableTopicResponse_init(&topic);
    rn_FetchResponse_PartitionData_t parts[2];
    rn_FetchResponse_AbortedTransaction_t aborted[1];
    rn_FetchResponse_AbortedTransaction_init(&aborted[0]);
    aborted[0].ProducerId = 9;
    aborted[0].FirstOffset = 10;
    for (int i = 0; i < 2; i++) {
        rn_FetchResponse_PartitionData_init(&parts[i]);
        parts[i].PartitionIndex = i;
        parts[i].HighWatermark = 50;
    }
    ASSERT_EQ(parts[0].LastStableOffset, -1);
    ASSERT_EQ(parts[0].PreferredReadReplica, -1);
    ASSERT_EQ(parts[0].DivergingEpoch.Epoch, -1);
    ASSERT_EQ(parts[0].Records.len, 0);
    parts[0].Records = (rn_records_t){batch_a, sizeof(batch_a), NULL, 0};
    parts[0].AbortedTransactions_count = 1;
    parts[0].AbortedTransactions = aborted;
    parts[1].ErrorCode = RN_ERR_NOT_LEADER_OR_FOLLOWER;
    parts[1].AbortedTransactions_count = -1;
    parts[1].Records.len = -1;
    parts[1].CurrentLeader.LeaderId = 2;
    parts[1].CurrentLeader.LeaderEpoch = 3;
    parts[1].DivergingEpoch.Epoch = 4;
    parts[1].DivergingEpoch.EndOffset = 40;
    topic.Topic = STR("orders");
    topic.Partitions_count = 2;
    topic.Partitions = parts;
    in.Responses_count = 1;
    in.Responses = &topic;
    in.SessionId = 12;

    ROUNDTRIP(&fx, FetchResponse, 4, &in, &out);
    ASSERT_EQ(out.SessionId, 0); /* v7+ */
    rn_FetchResponse_PartitionData_t *p = out.Responses[0].Partitions;
    ASSERT_EQ(p[0].AbortedTransactions_count, 1);
    ASSERT_EQ(p[0].AbortedTransactions[0].FirstOffset, 10);
    ASSERT_EQ(p[1].AbortedTransactions_count, -1);
    ASSERT_EQ(p[1].Records.len, -1);
    ASSERT_EQ(p[1].CurrentLeader.LeaderId, -1); /* tagged, v12+ */
    ASSERT_MEMEQ(p[0].Records.ptr, batch_a, sizeof(batch_a));
    ASSERT_PREFIXES_FAIL(&fx, FetchResponse, 4);

    fx_reset(&fx);
    ROUNDTRIP(&fx, FetchResponse, 12, &in, &out);
    p = out.Responses[0].Partitions;
    ASSERT_EQ(out.SessionId, 12);
    ASSERT_EQ(p[1].CurrentLeader.LeaderId, 2);
    ASSERT_EQ(p[1].CurrentLeader.LeaderEpoch, 3);
    ASSERT_EQ(p[1].DivergingEpoch.Epoch, 4);
    ASSERT_EQ(p[1].DivergingEpoch.EndOffset, 40);
    ASSERT_EQ(p[1].SnapshotId.EndOffset, -1);
    ASSERT_EQ(p[0].CurrentLeader.LeaderId, -1);
    ASSERT_PREFIXES_FAIL(&fx, FetchResponse, 12);

    /* Records from a file region become a splice, not copied bytes. */
    fx_reset(&fx);
    int fd = open("/dev/null", O_RDONLY);
    ASSERT_TRUE(fd >= 0);
    rn_fileref_t *f = rn_fileref_new(fd);
    parts[0].Records = (rn_records_t){NULL, 4096, f, 8192};
    rn_FetchResponse_encode(&fx.b, 12, &in);
    ASSERT_EQ(rn_buf_err(&fx.b), RN_OK);
    ASSERT_EQ(fx.b.nsplices, 1);
    ASSERT_EQ(fx.b.splices[0].file_pos, 8192);
    ASSERT_EQ(fx.b.splices[0].len, 4096);
    ASSERT_EQ(rn_buf_total_len(&fx.b), fx.b.len + 4096);
    rn_fileref_release(f); /* the buf holds its own reference until reset */
    fx_free(&fx);
}

/* ------------------------------------------------------------ ApiVersions */

RN_TEST(api_versions_v0_v3_roundtrip) {
    fx_t fx;
    fx_init(&fx);
    rn_ApiVersionsRequest_t rq, rq2;
    rn_ApiVersionsRequest_init(&rq);
    rq.ClientSoftwareName = STR("runnel-test");
    rq.ClientSoftwareVersion = STR("0.1");
    ROUNDTRIP(&fx, ApiVersionsRequest, 0, &rq, &rq2);
    ASSERT_EQ(fx.b.len, 0);
    fx_reset(&fx);
    ROUNDTRIP(&fx, ApiVersionsRequest, 3, &rq, &rq2);
    ASSERT_STR(rq2.ClientSoftwareName, "runnel-test");
    ASSERT_STR(rq2.ClientSoftwareVersion, "0.1");

    rn_ApiVersionsResponse_t rs, rs2;
    rn_ApiVersionsResponse_init(&rs);
    ASSERT_EQ(rs.FinalizedFeaturesEpoch, -1);
    rn_ApiVersionsResponse_ApiVersion_t keys[3];
    for (int i = 0; i < 3; i++) {
        rn_ApiVersionsResponse_ApiVersion_init(&keys[i]);
        keys[i].ApiKey = (int16_t)rn_api_table[i].api_key;
        keys[i].MinVersion = rn_api_table[i].min_version;
        keys[i].MaxVersion = rn_api_table[i].max_version;
    }
    /* enough features that the tagged field's size needs a 2-byte varint */
    rn_ApiVersionsResponse_SupportedFeatureKey_t feats[20];
    for (int i = 0; i < 20; i++) {
        rn_ApiVersionsResponse_SupportedFeatureKey_init(&feats[i]);
        feats[i].Name = STR("metadata.version");
        feats[i].MinVersion = 1;
        feats[i].MaxVersion = (int16_t)(20 + i);
    }
    rs.ApiKeys_count = 3;
    rs.ApiKeys = keys;
    rs.ThrottleTimeMs = 0;
    rs.SupportedFeatures_count = 20;
    rs.SupportedFeatures = feats;
    rs.FinalizedFeaturesEpoch = 7;
    rs.ZkMigrationReady = true;

    fx_reset(&fx);
    ROUNDTRIP(&fx, ApiVersionsResponse, 0, &rs, &rs2);
    ASSERT_EQ(fx.b.len, 2 + 4 + 3 * 6);
    ASSERT_EQ(rs2.ApiKeys[2].ApiKey, rn_api_table[2].api_key);
    ASSERT_EQ(rs2.SupportedFeatures_count, 0);
    ASSERT_EQ(rs2.FinalizedFeaturesEpoch, -1);

    fx_reset(&fx);
    ROUNDTRIP(&fx, ApiVersionsResponse, 3, &rs, &rs2);
    ASSERT_EQ(rs2.ApiKeys_count, 3);
    ASSERT_EQ(rs2.ApiKeys[1].MaxVersion, rn_api_table[1].max_version);
    ASSERT_EQ(rs2.SupportedFeatures_count, 20);
    ASSERT_STR(rs2.SupportedFeatures[19].Name, "metadata.version");
    ASSERT_EQ(rs2.SupportedFeatures[19].MaxVersion, 39);
    ASSERT_EQ(rs2.FinalizedFeaturesEpoch, 7);
    ASSERT_EQ(rs2.FinalizedFeatures_count, 0);
    ASSERT_TRUE(rs2.ZkMigrationReady);
    ASSERT_PREFIXES_FAIL(&fx, ApiVersionsResponse, 3);
    fx_free(&fx);
}

/* ----------------------------------------------------------- CreateTopics */

RN_TEST(create_topics_v5_roundtrip) {
    fx_t fx;
    fx_init(&fx);
    rn_CreateTopicsRequest_t in, out;
    rn_CreateTopicsRequest_init(&in);
    ASSERT_EQ(in.timeoutMs, 60000);
    rn_CreateTopicsRequest_CreatableTopic_t t;
    rn_CreateTopicsRequest_CreatableTopic_init(&t);
    rn_CreateTopicsRequest_CreatableTopicConfig_t cfg[2];
    rn_CreateTopicsRequest_CreatableReplicaAssignment_t asg;
    rn_CreateTopicsRequest_CreatableReplicaAssignment_init(&asg);
    int32_t brokers[] = {1, 2, 3};
    asg.PartitionIndex = 0;
    asg.BrokerIds_count = 3;
    asg.BrokerIds = brokers;
    for (int i = 0; i < 2; i++) rn_CreateTopicsRequest_CreatableTopicConfig_init(&cfg[i]);
    cfg[0].Name = STR("cleanup.policy");
    cfg[0].Value = STR("compact");
    cfg[1].Name = STR("retention.ms");
    cfg[1].Value = RN_STR_NULL;
    t.Name = STR("new-topic");
    t.NumPartitions = -1;
    t.ReplicationFactor = -1;
    t.Assignments_count = 1;
    t.Assignments = &asg;
    t.Configs_count = 2;
    t.Configs = cfg;
    in.Topics_count = 1;
    in.Topics = &t;
    in.validateOnly = true;
    ROUNDTRIP(&fx, CreateTopicsRequest, 5, &in, &out);
    ASSERT_EQ(out.timeoutMs, 60000);
    ASSERT_TRUE(out.validateOnly);
    ASSERT_STR(out.Topics[0].Name, "new-topic");
    ASSERT_EQ(out.Topics[0].Assignments[0].BrokerIds[2], 3);
    ASSERT_STR(out.Topics[0].Configs[0].Value, "compact");
    ASSERT_NULLSTR(out.Topics[0].Configs[1].Value);
    ASSERT_PREFIXES_FAIL(&fx, CreateTopicsRequest, 5);

    rn_CreateTopicsResponse_t rs, rs2;
    rn_CreateTopicsResponse_init(&rs);
    rn_CreateTopicsResponse_CreatableTopicResult_t res;
    rn_CreateTopicsResponse_CreatableTopicResult_init(&res);
    ASSERT_EQ(res.NumPartitions, -1);
    ASSERT_EQ(res.ReplicationFactor, -1);
    res.Name = STR("new-topic");
    res.TopicId[0] = 0xee;
    res.ErrorCode = RN_ERR_TOPIC_ALREADY_EXISTS;
    res.ErrorMessage = STR("exists");
    res.Configs_count = -1;
    rs.Topics_count = 1;
    rs.Topics = &res;
    fx_reset(&fx);
    ROUNDTRIP(&fx, CreateTopicsResponse, 5, &rs, &rs2);
    ASSERT_EQ(rs2.Topics[0].ErrorCode, RN_ERR_TOPIC_ALREADY_EXISTS);
    ASSERT_STR(rs2.Topics[0].ErrorMessage, "exists");
    ASSERT_EQ(rs2.Topics[0].Configs_count, -1);
    ASSERT_EQ(rs2.Topics[0].TopicId[0], 0); /* v7+ */
    fx_free(&fx);
}

/* ---------------------------------------------------- consumer protocol */

RN_TEST(consumer_protocol_subscription_all_versions) {
    fx_t fx;
    fx_init(&fx);
    rn_ConsumerProtocolSubscription_t in, out;
    rn_ConsumerProtocolSubscription_init(&in);
    ASSERT_EQ(in.UserData.len, -1);
    ASSERT_EQ(in.GenerationId, -1);
    ASSERT_NULLSTR(in.RackId);
    rn_str_t topics[] = {STR("a"), STR("b"), STR("c")};
    int32_t owned_parts[] = {0, 2};
    rn_ConsumerProtocolSubscription_TopicPartition_t owned;
    rn_ConsumerProtocolSubscription_TopicPartition_init(&owned);
    owned.Topic = STR("a");
    owned.Partitions_count = 2;
    owned.Partitions = owned_parts;
    static const uint8_t ud[] = {0xde, 0xad};
    in.Topics_count = 3;
    in.Topics = topics;
    in.UserData = (rn_bytes_t){ud, 2};
    in.OwnedPartitions_count = 1;
    in.OwnedPartitions = &owned;
    in.GenerationId = 12;
    in.RackId = STR("rack");
    for (int16_t v = 0; v <= 3; v++) {
        fx_reset(&fx);
        ROUNDTRIP(&fx, ConsumerProtocolSubscription, v, &in, &out);
        ASSERT_EQ(out.Topics_count, 3);
        ASSERT_STR(out.Topics[2], "c");
        ASSERT_EQ(out.UserData.len, 2);
        ASSERT_MEMEQ(out.UserData.ptr, ud, 2);
        ASSERT_EQ(out.OwnedPartitions_count, v >= 1 ? 1 : 0);
        if (v >= 1) ASSERT_EQ(out.OwnedPartitions[0].Partitions[1], 2);
        ASSERT_EQ(out.GenerationId, v >= 2 ? 12 : -1);
        if (v >= 3)
            ASSERT_STR(out.RackId, "rack");
        else
            ASSERT_NULLSTR(out.RackId);
        ASSERT_PREFIXES_FAIL(&fx, ConsumerProtocolSubscription, v);
    }
    fx_free(&fx);
}

RN_TEST(consumer_protocol_assignment_roundtrip) {
    fx_t fx;
    fx_init(&fx);
    rn_ConsumerProtocolAssignment_t in, out;
    rn_ConsumerProtocolAssignment_init(&in);
    rn_ConsumerProtocolAssignment_TopicPartition_t tp;
    rn_ConsumerProtocolAssignment_TopicPartition_init(&tp);
    int32_t p[] = {4};
    tp.Topic = STR("t");
    tp.Partitions_count = 1;
    tp.Partitions = p;
    in.AssignedPartitions_count = 1;
    in.AssignedPartitions = &tp;
    ROUNDTRIP(&fx, ConsumerProtocolAssignment, 1, &in, &out);
    ASSERT_EQ(out.AssignedPartitions[0].Partitions[0], 4);
    ASSERT_EQ(out.UserData.len, -1);
    fx_free(&fx);
}

/* ------------------------------------------------------------ byte-exact */

RN_TEST(bytes_request_header_v2) {
    rn_buf_t b;
    rn_buf_init(&b, 1024);
    rn_req_header_t h = {.api_key = RN_API_API_VERSIONS, .api_version = 3, .correlation_id = 7,
                         .client_id = STR("ab")};
    rn_req_header_encode(&b, &h);
    /* key 18, version 3, correlation 7, classic string "ab", empty tag section */
    const uint8_t want[] = {0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x02, 'a', 'b', 0x00};
    ASSERT_EQ(b.len, sizeof(want));
    ASSERT_MEMEQ(b.data, want, sizeof(want));

    /* and back, with the body following */
    rn_buf_put_u16(&b, 0xbeef);
    rn_reader_t r;
    rn_reader_init(&r, b.data, b.len);
    rn_req_header_t d;
    ASSERT_EQ(rn_req_header_decode(&r, &d), RN_OK);
    ASSERT_EQ(d.api_key, 18);
    ASSERT_EQ(d.api_version, 3);
    ASSERT_EQ(d.correlation_id, 7);
    ASSERT_STR(d.client_id, "ab");
    ASSERT_EQ(d.header_version, 2);
    ASSERT_EQ(rn_reader_u16(&r), 0xbeef);

    /* header v1 (Produce v3) with a null client id */
    rn_buf_reset(&b);
    h = (rn_req_header_t){.api_key = RN_API_PRODUCE, .api_version = 3, .correlation_id = -2,
                          .client_id = RN_STR_NULL};
    rn_req_header_encode(&b, &h);
    const uint8_t want1[] = {0x00, 0x00, 0x00, 0x03, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff};
    ASSERT_EQ(b.len, sizeof(want1));
    ASSERT_MEMEQ(b.data, want1, sizeof(want1));
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_req_header_decode(&r, &d), RN_OK);
    ASSERT_EQ(d.header_version, 1);
    ASSERT_NULLSTR(d.client_id);
    ASSERT_EQ(d.correlation_id, -2);
    rn_buf_free(&b);
}

RN_TEST(bytes_api_versions_request_v3) {
    rn_buf_t b;
    rn_buf_init(&b, 1024);
    rn_ApiVersionsRequest_t m;
    rn_ApiVersionsRequest_init(&m);
    m.ClientSoftwareName = STR("rn");
    m.ClientSoftwareVersion = STR("1");
    rn_ApiVersionsRequest_encode(&b, 3, &m);
    const uint8_t want[] = {0x03, 'r', 'n', 0x02, '1', 0x00};
    ASSERT_EQ(b.len, sizeof(want));
    ASSERT_MEMEQ(b.data, want, sizeof(want));
    rn_buf_free(&b);
}

RN_TEST(bytes_metadata_request) {
    rn_buf_t b;
    rn_buf_init(&b, 1024);
    rn_MetadataRequest_t m;
    rn_MetadataRequest_init(&m);
    m.Topics_count = -1;
    rn_MetadataRequest_encode(&b, 1, &m);
    const uint8_t v1[] = {0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(b.len, sizeof(v1));
    ASSERT_MEMEQ(b.data, v1, sizeof(v1));

    /* v9: compact null (0), AllowAutoTopicCreation, two false flags, tags */
    rn_buf_reset(&b);
    rn_MetadataRequest_encode(&b, 9, &m);
    const uint8_t v9[] = {0x00, 0x01, 0x00, 0x00, 0x00};
    ASSERT_EQ(b.len, sizeof(v9));
    ASSERT_MEMEQ(b.data, v9, sizeof(v9));

    /* v0 cannot say null: written as an empty array */
    rn_buf_reset(&b);
    rn_MetadataRequest_encode(&b, 0, &m);
    const uint8_t v0[] = {0x00, 0x00, 0x00, 0x00};
    ASSERT_EQ(b.len, sizeof(v0));
    ASSERT_MEMEQ(b.data, v0, sizeof(v0));

    /* one topic "t" at v12: compact count 2, zero uuid, compact "t", tags, flags */
    rn_buf_reset(&b);
    rn_MetadataRequest_MetadataRequestTopic_t t;
    rn_MetadataRequest_MetadataRequestTopic_init(&t);
    t.Name = STR("t");
    m.Topics_count = 1;
    m.Topics = &t;
    rn_MetadataRequest_encode(&b, 12, &m);
    uint8_t v12[1 + 16 + 2 + 1 + 3] = {0x02};
    v12[17] = 0x02;
    v12[18] = 't';
    v12[19] = 0x00;
    v12[20] = 0x01;
    ASSERT_EQ(b.len, sizeof(v12));
    ASSERT_MEMEQ(b.data, v12, sizeof(v12));
    rn_buf_free(&b);
}

RN_TEST(bytes_response_header) {
    rn_buf_t b;
    rn_buf_init(&b, 64);
    rn_resp_header_encode(&b, RN_API_FETCH, 12, 0x01020304);
    const uint8_t v1[] = {1, 2, 3, 4, 0};
    ASSERT_EQ(b.len, sizeof(v1));
    ASSERT_MEMEQ(b.data, v1, sizeof(v1));
    rn_buf_reset(&b);
    rn_resp_header_encode(&b, RN_API_API_VERSIONS, 3, 0x01020304);
    ASSERT_EQ(b.len, 4);
    rn_buf_reset(&b);
    rn_resp_header_encode(&b, RN_API_FETCH, 11, 0x01020304);
    ASSERT_EQ(b.len, 4);
    rn_buf_free(&b);
}

/* ---------------------------------------------------- headers and tables */

RN_TEST(header_versions) {
    ASSERT_EQ(rn_req_header_version(RN_API_PRODUCE, 8), 1);
    ASSERT_EQ(rn_req_header_version(RN_API_PRODUCE, 9), 2);
    ASSERT_EQ(rn_req_header_version(RN_API_API_VERSIONS, 2), 1);
    ASSERT_EQ(rn_req_header_version(RN_API_API_VERSIONS, 3), 2);
    ASSERT_EQ(rn_req_header_version(RN_API_API_VERSIONS, 99), 2); /* newer than we know */
    ASSERT_EQ(rn_req_header_version(RN_API_SASL_HANDSHAKE, 1), 1); /* never flexible */
    ASSERT_EQ(rn_req_header_version(RN_API_CONTROLLED_SHUTDOWN, 0), 0);
    ASSERT_EQ(rn_req_header_version(RN_API_CONTROLLED_SHUTDOWN, 1), 1);
    ASSERT_EQ(rn_req_header_version(RN_API_CONTROLLED_SHUTDOWN, 3), 2);
    ASSERT_EQ(rn_req_header_version(RN_API_DESCRIBE_CLUSTER, 0), 2);
    ASSERT_EQ(rn_req_header_version(12345, 0), 1);
    ASSERT_EQ(rn_req_header_version(-1, 0), 1);
    ASSERT_EQ(rn_resp_header_version(RN_API_API_VERSIONS, 4), 0);
    ASSERT_EQ(rn_resp_header_version(RN_API_FETCH, 12), 1);
    ASSERT_EQ(rn_resp_header_version(RN_API_FETCH, 11), 0);
    ASSERT_EQ(rn_resp_header_version(12345, 1), 0);

    /* ControlledShutdown v0: no client id at all */
    const uint8_t cs0[] = {0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xaa};
    rn_reader_t r;
    rn_reader_init(&r, cs0, sizeof(cs0));
    rn_req_header_t h;
    ASSERT_EQ(rn_req_header_decode(&r, &h), RN_OK);
    ASSERT_EQ(h.header_version, 0);
    ASSERT_EQ(h.correlation_id, 5);
    ASSERT_NULLSTR(h.client_id);
    ASSERT_EQ(rn_reader_remaining(&r), 1);

    /* unknown API key: read as v1, correlation id still available */
    const uint8_t unk[] = {0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x01, 'x'};
    rn_reader_init(&r, unk, sizeof(unk));
    ASSERT_EQ(rn_req_header_decode(&r, &h), RN_OK);
    ASSERT_EQ(h.header_version, 1);
    ASSERT_EQ(h.correlation_id, 9);
    ASSERT_STR(h.client_id, "x");

    /* truncated header */
    rn_reader_init(&r, unk, 6);
    ASSERT_EQ(rn_req_header_decode(&r, &h), RN_ERR_TRUNCATED);
    rn_reader_init(&r, unk, 1);
    ASSERT_EQ(rn_req_header_decode(&r, &h), RN_ERR_TRUNCATED);
}

RN_TEST(api_table) {
    const rn_api_info_t *p = rn_api_info(RN_API_PRODUCE);
    ASSERT_TRUE(p != NULL);
    ASSERT_STREQ(p->name, "Produce");
    ASSERT_EQ(p->min_version, 0);
    ASSERT_EQ(p->max_version, 11);
    ASSERT_EQ(p->flexible_min, 9);
    p = rn_api_info(RN_API_API_VERSIONS);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(p->api_key, 18);
    ASSERT_EQ(p->max_version, 4);
    ASSERT_EQ(p->flexible_min, 3);
    p = rn_api_info(RN_API_SASL_HANDSHAKE);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(p->flexible_min, -1);
    ASSERT_TRUE(rn_api_info(RN_API_CONTROLLED_SHUTDOWN) == NULL);
    ASSERT_TRUE(rn_api_info_known(RN_API_CONTROLLED_SHUTDOWN) != NULL);
    ASSERT_TRUE(rn_api_info(-1) == NULL);
    ASSERT_EQ(rn_api_table_count, 47); /* 40 client APIs + 4 node-to-node + 3 of the quorum's voter set */
    p = rn_api_info(RN_API_DESCRIBE_QUORUM);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(p->api_key, 55);
    ASSERT_EQ(p->max_version, 2);
    ASSERT_EQ(p->flexible_min, 0);
    ASSERT_EQ(RN_API_ADD_RAFT_VOTER, 80);
    ASSERT_EQ(RN_API_REMOVE_RAFT_VOTER, 81);
    for (int i = 1; i < rn_api_table_count; i++) ASSERT_LT(rn_api_table[i - 1].api_key, rn_api_table[i].api_key);
    ASSERT_EQ(RN_API_FETCH, 1);
    ASSERT_EQ(RN_API_LIST_OFFSETS, 2);
    ASSERT_EQ(RN_API_METADATA, 3);
    ASSERT_EQ(RN_API_INIT_PRODUCER_ID, 22);
    ASSERT_EQ(RN_API_DESCRIBE_CLUSTER, 60);

    uint8_t empty[1] = {1}; /* compact "" then nothing */
    rn_reader_t r;
    rn_arena_t a;
    rn_arena_init(&a, ARENA_MAX);
    rn_reader_init(&r, empty, 0);
    ASSERT_EQ(rn_request_decode_any(RN_API_CONTROLLED_SHUTDOWN, 0, &r, &a), RN_ERR_UNSUPPORTED_VERSION);
    ASSERT_EQ(rn_request_decode_any(RN_API_PRODUCE, 12, &r, &a), RN_ERR_UNSUPPORTED_VERSION);
    ASSERT_EQ(rn_request_decode_any(RN_API_PRODUCE, -1, &r, &a), RN_ERR_UNSUPPORTED_VERSION);
    ASSERT_EQ(rn_request_decode_any(RN_API_API_VERSIONS, 0, &r, &a), RN_OK);
    rn_reader_init(&r, empty, 1);
    ASSERT_EQ(rn_request_decode_any(RN_API_API_VERSIONS, 3, &r, &a), RN_ERR_TRUNCATED);
    rn_arena_reset(&a);

    /* direct decode/encode reject versions outside validVersions */
    rn_buf_t b;
    rn_buf_init(&b, 64);
    rn_ApiVersionsRequest_t m;
    rn_ApiVersionsRequest_init(&m);
    rn_ApiVersionsRequest_encode(&b, 5, &m);
    ASSERT_EQ(rn_buf_err(&b), RN_ERR_UNSUPPORTED_VERSION);
    rn_buf_free(&b);
}

/* Every generated API: a default-initialized request and response round-trip
 * at every valid version through the generic entry points. */
RN_TEST(all_apis_default_roundtrip) {
    for (int i = 0; i < rn_api_table_count; i++) {
        const rn_api_info_t *api = &rn_api_table[i];
        for (int16_t v = api->min_version; v <= api->max_version; v++) {
            for (int dir = 0; dir < 2; dir++) {
                rn_arena_t a;
                rn_arena_init(&a, ARENA_MAX);
                rn_buf_t b1, b2;
                rn_buf_init(&b1, 1 << 16);
                rn_buf_init(&b2, 1 << 16);
                void *m = rn_msg_new_any(api->api_key, dir, &a);
                ASSERT_TRUE(m != NULL);
                rn_msg_encode_any(api->api_key, dir, v, &b1, m);
                ASSERT_EQ(rn_buf_err(&b1), RN_OK);
                rn_reader_t r;
                rn_reader_init(&r, b1.data, b1.len);
                rn_err_t err = rn_msg_decode_any(api->api_key, dir, v, &r, &a, &m);
                if (err != RN_OK)
                    RN_TEST_FAIL_("%s %s v%d: decode -> %d", api->name, dir ? "response" : "request", v, err);
                ASSERT_EQ(rn_reader_remaining(&r), 0);
                rn_msg_encode_any(api->api_key, dir, v, &b2, m);
                ASSERT_EQ(b2.len, b1.len);
                if (b1.len) ASSERT_MEMEQ(b2.data, b1.data, b1.len);
                rn_buf_free(&b1);
                rn_buf_free(&b2);
                rn_arena_reset(&a);
            }
        }
    }
}

/* ---------------------------------------------------------- hostile input */

RN_TEST(unknown_tagged_fields_skipped) {
    /* ApiVersionsRequest v3 with an unknown tag 99 (3 bytes) and tag 5 (0 bytes) */
    const uint8_t in[] = {0x03, 'r', 'n', 0x02, '1', 0x02, 99, 0x03, 0xaa, 0xbb, 0xcc, 5, 0x00};
    rn_reader_t r;
    rn_reader_init(&r, in, sizeof(in));
    rn_arena_t a;
    rn_arena_init(&a, ARENA_MAX);
    rn_ApiVersionsRequest_t m;
    ASSERT_EQ(rn_ApiVersionsRequest_decode(&r, 3, &a, &m), RN_OK);
    ASSERT_EQ(rn_reader_remaining(&r), 0);
    ASSERT_STR(m.ClientSoftwareName, "rn");
    ASSERT_STR(m.ClientSoftwareVersion, "1");

    /* unknown tag whose size runs past the end */
    const uint8_t bad[] = {0x03, 'r', 'n', 0x02, '1', 0x01, 99, 0x05, 0xaa};
    rn_reader_init(&r, bad, sizeof(bad));
    ASSERT_NE(rn_ApiVersionsRequest_decode(&r, 3, &a, &m), RN_OK);

    /* FetchRequest v12 topic-level: known tag (ClusterId) framed with a size
     * larger than its value (trailing bytes ignored), plus an unknown tag */
    rn_buf_t b;
    rn_buf_init(&b, 1024);
    rn_FetchRequest_t f;
    rn_FetchRequest_init(&f);
    rn_FetchRequest_encode(&b, 12, &f);
    b.len--; /* drop the empty tag section, write our own */
    const uint8_t tags[] = {0x02, 0x00, 0x04, 0x02, 'z', 0xee, 0xee, 0x21, 0x01, 0x00};
    rn_buf_put(&b, tags, sizeof(tags));
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_FetchRequest_decode(&r, 12, &a, &f), RN_OK);
    ASSERT_STR(f.ClusterId, "z");
    ASSERT_EQ(rn_reader_remaining(&r), 0);

    /* a known tag whose value overruns its own size is malformed */
    b.len -= sizeof(tags);
    const uint8_t tags2[] = {0x01, 0x00, 0x01, 0x05, 'a', 'b', 'c', 'd'};
    rn_buf_put(&b, tags2, sizeof(tags2));
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_FetchRequest_decode(&r, 12, &a, &f), RN_ERR_MALFORMED);

    /* tag 1 (ReplicaState) before v15 is unknown at v12: skipped */
    b.len -= sizeof(tags2);
    const uint8_t tags3[] = {0x01, 0x01, 0x02, 0xff, 0xff};
    rn_buf_put(&b, tags3, sizeof(tags3));
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_FetchRequest_decode(&r, 12, &a, &f), RN_OK);
    ASSERT_EQ(f.ReplicaState.ReplicaId, -1);
    rn_buf_free(&b);
    rn_arena_reset(&a);
}

RN_TEST(absurd_array_counts_rejected) {
    rn_arena_t a;
    rn_reader_t r;
    rn_ProduceRequest_t m;
    /* Produce v3: null txn id, acks, timeout, then TopicData count 0x7fffffff */
    const uint8_t huge[] = {0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    rn_arena_init(&a, 64 * 1024);
    rn_reader_init(&r, huge, sizeof(huge));
    ASSERT_EQ(rn_ProduceRequest_decode(&r, 3, &a, &m), RN_ERR_MALFORMED);
    ASSERT_LT(a.used_bytes, 8192);
    rn_arena_reset(&a);

    /* a negative count other than -1 */
    uint8_t neg[sizeof(huge)];
    memcpy(neg, huge, sizeof(huge));
    neg[8] = 0xff;
    neg[11] = 0xfe;
    rn_reader_init(&r, neg, sizeof(neg));
    ASSERT_EQ(rn_ProduceRequest_decode(&r, 3, &a, &m), RN_ERR_MALFORMED);
    rn_arena_reset(&a);

    /* compact (v9) count 2^32-1 as a uvarint */
    const uint8_t chuge[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    rn_reader_init(&r, chuge, sizeof(chuge));
    ASSERT_EQ(rn_ProduceRequest_decode(&r, 9, &a, &m), RN_ERR_MALFORMED);
    ASSERT_LT(a.used_bytes, 8192);
    rn_arena_reset(&a);

    /* A count that fits the input but not the arena: 4000 int32 partitions in
     * a ConsumerProtocolAssignment against a 4 KiB arena -> RN_ERR_LIMIT. */
    rn_buf_t b;
    rn_buf_init(&b, 4u << 20);
    rn_buf_put_i32(&b, 1);
    rn_buf_put_str(&b, STR("t"), false);
    rn_buf_put_i32(&b, 4000);
    for (int i = 0; i < 4000; i++) rn_buf_put_i32(&b, i);
    rn_buf_put_i32(&b, -1);
    rn_ConsumerProtocolAssignment_t ca;
    rn_arena_init(&a, 4096);
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_ConsumerProtocolAssignment_decode(&r, 0, &a, &ca), RN_ERR_LIMIT);
    ASSERT_LE(a.used_bytes, 4096);
    rn_arena_reset(&a);
    /* with room it decodes */
    rn_arena_init(&a, 1 << 20);
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_ConsumerProtocolAssignment_decode(&r, 0, &a, &ca), RN_OK);
    ASSERT_EQ(ca.AssignedPartitions[0].Partitions_count, 4000);
    ASSERT_EQ(ca.AssignedPartitions[0].Partitions[3999], 3999);
    rn_arena_reset(&a);

    /* Struct elements: min element size bounds the count too. FetchRequest v4
     * partitions are >= 16 bytes each; claim 2 with 20 bytes left. */
    rn_buf_reset(&b);
    rn_buf_put_i32(&b, -1);  /* ReplicaId */
    rn_buf_put_i32(&b, 0);   /* MaxWaitMs */
    rn_buf_put_i32(&b, 0);   /* MinBytes */
    rn_buf_put_i32(&b, 0);   /* MaxBytes */
    rn_buf_put_i8(&b, 0);    /* IsolationLevel */
    rn_buf_put_i32(&b, 1);   /* Topics */
    rn_buf_put_str(&b, STR("t"), false);
    rn_buf_put_i32(&b, 2);   /* Partitions */
    rn_buf_put_zero(&b, 20);
    rn_FetchRequest_t fr;
    rn_arena_init(&a, 1 << 20);
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_FetchRequest_decode(&r, 4, &a, &fr), RN_ERR_MALFORMED);
    rn_arena_reset(&a);

    /* Exceeding RN_CODEC_ARRAY_MAX with enough input is RN_ERR_LIMIT, before
     * any allocation: DescribeConfigs v4 ConfigurationKeys is a compact
     * []string, one byte per empty element. */
    rn_buf_reset(&b);
    int32_t n = RN_CODEC_ARRAY_MAX + 1;
    rn_buf_put_uvarint(&b, 2);                     /* Resources: 1 */
    rn_buf_put_i8(&b, 2);                          /* ResourceType */
    rn_buf_put_uvarint(&b, 1);                     /* ResourceName "" */
    rn_buf_put_uvarint(&b, (uint64_t)n + 1);       /* ConfigurationKeys: n */
    for (int32_t i = 0; i < n; i++) rn_buf_put_uvarint(&b, 1);
    rn_buf_put_uvarint(&b, 0);
    rn_buf_put_i8(&b, 0);
    rn_buf_put_i8(&b, 0);
    rn_buf_put_uvarint(&b, 0);
    ASSERT_EQ(rn_buf_err(&b), RN_OK);
    rn_DescribeConfigsRequest_t dc;
    rn_arena_init(&a, 1 << 20);
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_DescribeConfigsRequest_decode(&r, 4, &a, &dc), RN_ERR_LIMIT);
    ASSERT_LT(a.used_bytes, 8192);
    rn_arena_reset(&a);
    rn_buf_free(&b);
}

RN_TEST(non_nullable_null_rejected) {
    rn_arena_t a;
    rn_arena_init(&a, ARENA_MAX);
    rn_reader_t r;
    /* Produce v3 topic Name null */
    const uint8_t p3[] = {0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x01,
                          0xff, 0xff, 0x00, 0x00, 0x00, 0x00};
    rn_ProduceRequest_t pm;
    rn_reader_init(&r, p3, sizeof(p3));
    ASSERT_EQ(rn_ProduceRequest_decode(&r, 3, &a, &pm), RN_ERR_MALFORMED);
    /* the same with an empty name decodes */
    uint8_t ok[sizeof(p3)];
    memcpy(ok, p3, sizeof(p3));
    ok[12] = ok[13] = 0;
    rn_reader_init(&r, ok, sizeof(ok));
    ASSERT_EQ(rn_ProduceRequest_decode(&r, 3, &a, &pm), RN_OK);
    ASSERT_EQ(pm.TopicData[0].Name.len, 0);
    /* Produce v3 TransactionalId null is fine (nullable 3+) -- checked above */

    /* Metadata v0 topics null: not nullable in v0, nullable from v1 */
    const uint8_t mnull[] = {0xff, 0xff, 0xff, 0xff};
    rn_MetadataRequest_t mm;
    rn_reader_init(&r, mnull, sizeof(mnull));
    ASSERT_EQ(rn_MetadataRequest_decode(&r, 0, &a, &mm), RN_ERR_MALFORMED);
    rn_reader_init(&r, mnull, sizeof(mnull));
    ASSERT_EQ(rn_MetadataRequest_decode(&r, 1, &a, &mm), RN_OK);
    ASSERT_EQ(mm.Topics_count, -1);

    /* Metadata v9 (compact): topic name null is rejected before v10 */
    const uint8_t m9[] = {0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
    rn_reader_init(&r, m9, sizeof(m9));
    ASSERT_EQ(rn_MetadataRequest_decode(&r, 9, &a, &mm), RN_ERR_MALFORMED);

    /* Fetch v12 (compact): the topics array null (0) is rejected */
    rn_buf_t b;
    rn_buf_init(&b, 256);
    rn_buf_put_i32(&b, -1);
    rn_buf_put_i32(&b, 0);
    rn_buf_put_i32(&b, 0);
    rn_buf_put_i32(&b, 0);
    rn_buf_put_i8(&b, 0);
    rn_buf_put_i32(&b, 0);
    rn_buf_put_i32(&b, -1);
    rn_buf_put_uvarint(&b, 0); /* Topics: null */
    rn_buf_put_uvarint(&b, 1); /* ForgottenTopicsData: empty */
    rn_buf_put_uvarint(&b, 1); /* RackId "" */
    rn_buf_put_uvarint(&b, 0); /* tags */
    rn_FetchRequest_t fm;
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_FetchRequest_decode(&r, 12, &a, &fm), RN_ERR_MALFORMED);
    b.data[25] = 1; /* empty instead */
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_FetchRequest_decode(&r, 12, &a, &fm), RN_OK);
    ASSERT_EQ(fm.Topics_count, 0);

    /* non-nullable null in encode: written as empty */
    rn_buf_reset(&b);
    rn_ProduceRequest_t pe;
    rn_ProduceRequest_init(&pe);
    rn_ProduceRequest_TopicProduceData_t t;
    rn_ProduceRequest_TopicProduceData_init(&t);
    t.Name = RN_STR_NULL;
    pe.TopicData_count = 1;
    pe.TopicData = &t;
    rn_ProduceRequest_encode(&b, 3, &pe);
    rn_reader_init(&r, b.data, b.len);
    ASSERT_EQ(rn_ProduceRequest_decode(&r, 3, &a, &pm), RN_OK);
    ASSERT_EQ(pm.TopicData[0].Name.len, 0);
    rn_buf_free(&b);
    rn_arena_reset(&a);
}

/* ------------------------------------------------------------ fuzz seeds */

static int write_seed(const char *dir, const char *name, int16_t key, int16_t ver, const rn_buf_t *body) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_req_header_t h = {.api_key = key, .api_version = ver, .correlation_id = 1,
                         .client_id = STR("seed")};
    rn_req_header_encode(&b, &h);
    rn_buf_put(&b, body->data, body->len);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b.data, 1, b.len, f) == b.len;
    if (f) fclose(f);
    rn_buf_free(&b);
    return ok;
}

/* Builds a few valid requests; writes them only when RN_WRITE_SEEDS is set. */
RN_TEST(seeds) {
    const char *dir = getenv("RN_WRITE_SEEDS");
    rn_buf_t body;
    rn_buf_init(&body, 1 << 20);
    int n = 0;
#define SEED(nm, k, v, M, m)                                                 \
    do {                                                                     \
        rn_buf_reset(&body);                                                 \
        rn_##M##_encode(&body, (v), (m));                                    \
        ASSERT_EQ(rn_buf_err(&body), RN_OK);                                 \
        if (dir) ASSERT_TRUE(write_seed(dir, (nm), (k), (v), &body));        \
        n++;                                                                 \
    } while (0)

    rn_ApiVersionsRequest_t av;
    rn_ApiVersionsRequest_init(&av);
    SEED("api_versions_v0", RN_API_API_VERSIONS, 0, ApiVersionsRequest, &av);
    av.ClientSoftwareName = STR("librdkafka");
    av.ClientSoftwareVersion = STR("2.3.0");
    SEED("api_versions_v3", RN_API_API_VERSIONS, 3, ApiVersionsRequest, &av);

    rn_MetadataRequest_t md;
    rn_MetadataRequest_init(&md);
    rn_MetadataRequest_MetadataRequestTopic_t mt;
    rn_MetadataRequest_MetadataRequestTopic_init(&mt);
    mt.Name = STR("orders");
    md.Topics_count = 1;
    md.Topics = &mt;
    SEED("metadata_v1", RN_API_METADATA, 1, MetadataRequest, &md);
    SEED("metadata_v12", RN_API_METADATA, 12, MetadataRequest, &md);

    rn_ProduceRequest_t pr;
    rn_ProduceRequest_TopicProduceData_t pt[2];
    rn_ProduceRequest_PartitionProduceData_t pp[3];
    fill_produce(&pr, pt, pp);
    SEED("produce_v3", RN_API_PRODUCE, 3, ProduceRequest, &pr);
    SEED("produce_v9", RN_API_PRODUCE, 9, ProduceRequest, &pr);

    rn_FetchRequest_t fr;
    rn_FetchRequest_init(&fr);
    rn_FetchRequest_FetchTopic_t ft;
    rn_FetchRequest_FetchTopic_init(&ft);
    rn_FetchRequest_FetchPartition_t fp;
    rn_FetchRequest_FetchPartition_init(&fp);
    fp.PartitionMaxBytes = 1 << 20;
    ft.Topic = STR("orders");
    ft.Partitions_count = 1;
    ft.Partitions = &fp;
    fr.Topics_count = 1;
    fr.Topics = &ft;
    fr.ClusterId = STR("c");
    SEED("fetch_v4", RN_API_FETCH, 4, FetchRequest, &fr);
    fr.ReplicaState.ReplicaId = 1;
    SEED("fetch_v15", RN_API_FETCH, 15, FetchRequest, &fr);

    rn_CreateTopicsRequest_t ct;
    rn_CreateTopicsRequest_init(&ct);
    rn_CreateTopicsRequest_CreatableTopic_t ctt;
    rn_CreateTopicsRequest_CreatableTopic_init(&ctt);
    ctt.Name = STR("new");
    ctt.NumPartitions = 3;
    ctt.ReplicationFactor = 1;
    ct.Topics_count = 1;
    ct.Topics = &ctt;
    SEED("create_topics_v5", RN_API_CREATE_TOPICS, 5, CreateTopicsRequest, &ct);

    rn_JoinGroupRequest_t jg;
    rn_JoinGroupRequest_init(&jg);
    rn_JoinGroupRequest_JoinGroupRequestProtocol_t jp;
    rn_JoinGroupRequest_JoinGroupRequestProtocol_init(&jp);
    static const uint8_t meta[] = {0, 1, 0, 0, 0, 1, 0, 1, 't', 0xff, 0xff, 0xff, 0xff};
    jp.Name = STR("range");
    jp.Metadata = (rn_bytes_t){meta, sizeof(meta)};
    jg.GroupId = STR("g");
    jg.SessionTimeoutMs = 10000;
    jg.RebalanceTimeoutMs = 30000;
    jg.ProtocolType = STR("consumer");
    jg.Protocols_count = 1;
    jg.Protocols = &jp;
    SEED("join_group_v5", RN_API_JOIN_GROUP, 5, JoinGroupRequest, &jg);
    SEED("join_group_v9", RN_API_JOIN_GROUP, 9, JoinGroupRequest, &jg);

    rn_OffsetCommitRequest_t oc;
    rn_OffsetCommitRequest_init(&oc);
    rn_OffsetCommitRequest_OffsetCommitRequestTopic_t oct;
    rn_OffsetCommitRequest_OffsetCommitRequestTopic_init(&oct);
    rn_OffsetCommitRequest_OffsetCommitRequestPartition_t ocp;
    rn_OffsetCommitRequest_OffsetCommitRequestPartition_init(&ocp);
    ocp.CommittedOffset = 42;
    oct.Name = STR("orders");
    oct.Partitions_count = 1;
    oct.Partitions = &ocp;
    oc.GroupId = STR("g");
    oc.Topics_count = 1;
    oc.Topics = &oct;
    SEED("offset_commit_v8", RN_API_OFFSET_COMMIT, 8, OffsetCommitRequest, &oc);
#undef SEED

    ASSERT_EQ(n, 12);

    /* every generated API, default request at its lowest and highest version */
    for (int i = 0; i < rn_api_table_count; i++) {
        const rn_api_info_t *api = &rn_api_table[i];
        rn_arena_t a;
        rn_arena_init(&a, ARENA_MAX);
        void *m = rn_msg_new_any(api->api_key, false, &a);
        ASSERT_TRUE(m != NULL);
        int16_t vs[2] = {api->min_version, api->max_version};
        for (int k = 0; k < 2; k++) {
            rn_buf_reset(&body);
            rn_msg_encode_any(api->api_key, false, vs[k], &body, m);
            ASSERT_EQ(rn_buf_err(&body), RN_OK);
            char name[96];
            snprintf(name, sizeof(name), "default_%s_v%d", api->name, vs[k]);
            if (dir) ASSERT_TRUE(write_seed(dir, name, api->api_key, vs[k], &body));
        }
        rn_arena_reset(&a);
    }
    rn_buf_free(&body);
}

int main(void) { return rn_test_main(); }
