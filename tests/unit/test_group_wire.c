/* The group APIs over the wire: an in-process broker on 127.0.0.1 and a
 * blocking client built on the generated codec, so every version of every
 * group API is encoded exactly as the schemas say. Covers each version's
 * happy path, Kafka's error codes, parked joins completed from another
 * connection, the timer thread (session expiry), and a restart. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rn_broker.h"
#include "rn_group.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"
#include "rn_test.h"

/* ---- broker ------------------------------------------------------------- */

static char dir_template[] = "/tmp/rn-group-wire-XXXXXX";
static char *data_dir;

static rn_broker_t *broker_start(const char *dir, const char *k1, const char *v1) {
    rn_config_set_t cs;
    rn_config_set_init(&cs);
    rn_config_set_put(&cs, "listeners", "PLAINTEXT://127.0.0.1:0");
    rn_config_set_put(&cs, "log.dirs", dir);
    rn_config_set_put(&cs, "metrics.listeners", "");
    rn_config_set_put(&cs, "num.network.threads", "2");
    rn_config_set_put(&cs, "group.initial.rebalance.delay.ms", "0");
    rn_config_set_put(&cs, "group.min.session.timeout.ms", "100");
    rn_config_set_put(&cs, "offsets.topic.num.partitions", "3");
    if (k1) rn_config_set_put(&cs, k1, v1);
    rn_broker_t *b = NULL;
    char err[256] = "";
    rn_err_t rc = rn_broker_new(&b, &cs, err, sizeof(err));
    rn_config_set_free(&cs);
    if (rc) {
        fprintf(stderr, "broker: %s\n", err);
        return NULL;
    }
    if (rn_broker_start(b)) {
        rn_broker_free(b);
        return NULL;
    }
    return b;
}

static void broker_stop(rn_broker_t *b) {
    rn_broker_stop(b);
    rn_broker_free(b);
}

/* ---- client ------------------------------------------------------------- */

typedef struct {
    int fd;
    int32_t corr;
    rn_arena_t arena; /* responses live here until cli_close */
} cli_t;

static void cli_open(cli_t *c, int port) {
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_TRUE(c->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->corr = 0;
    rn_arena_init(&c->arena, (size_t)64 << 20);
}

static void cli_close(cli_t *c) {
    close(c->fd);
    rn_arena_reset(&c->arena);
}

static int16_t last_key, last_ver;

static void cli_send(cli_t *c, int16_t key, int16_t ver, const void *req) {
    rn_buf_t b;
    rn_buf_init(&b, (size_t)16 << 20);
    rn_buf_put_i32(&b, 0);
    rn_req_header_t h = {.api_key = key, .api_version = ver, .correlation_id = ++c->corr,
                         .client_id = RN_STR_LIT("wire-test")};
    rn_req_header_encode(&b, &h);
    rn_msg_encode_any(key, false, ver, &b, req);
    ASSERT_EQ(rn_buf_err(&b), 0);
    rn_buf_patch_i32(&b, 0, (int32_t)(b.len - 4));
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = write(c->fd, b.data + off, b.len - off);
        ASSERT_TRUE(n > 0);
        off += (size_t)n;
    }
    rn_buf_free(&b);
    last_key = key;
    last_ver = ver;
}

static bool read_full(int fd, void *p, size_t n, int timeout_ms) {
    size_t got = 0;
    while (got < n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) <= 0) return false;
        ssize_t r = read(fd, (uint8_t *)p + got, n - got);
        if (r <= 0) return false;
        got += (size_t)r;
    }
    return true;
}

/* Reads one response (to the last request of this key/version on this connection). */
static void *cli_recv(cli_t *c, int16_t key, int16_t ver, int timeout_ms) {
    uint8_t sz[4];
    if (!read_full(c->fd, sz, 4, timeout_ms)) return NULL;
    uint32_t n = rn_load_be32(sz);
    uint8_t *data = rn_arena_alloc(&c->arena, n);
    ASSERT_TRUE(data != NULL);
    ASSERT_TRUE(read_full(c->fd, data, n, 5000));
    rn_reader_t r;
    rn_reader_init(&r, data, n);
    rn_ResponseHeader_t rh;
    ASSERT_EQ(rn_ResponseHeader_decode(&r, (int16_t)rn_resp_header_version(key, ver), &c->arena, &rh), 0);
    void *out = NULL;
    rn_err_t rc = rn_msg_decode_any(key, true, ver, &r, &c->arena, &out);
    if (rc) fprintf(stderr, "  decode of api %d v%d response failed: %s\n", key, ver, rn_err_name(rc));
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(rn_reader_remaining(&r), 0);
    return out;
}

static void *call(cli_t *c, int16_t key, int16_t ver, const void *req) {
    cli_send(c, key, ver, req);
    void *resp = cli_recv(c, key, ver, 10000);
    ASSERT_TRUE(resp != NULL);
    return resp;
}

static void *new_req(cli_t *c, int16_t key) {
    void *m = rn_msg_new_any(key, false, &c->arena);
    ASSERT_TRUE(m != NULL);
    return m;
}

/* FindCoordinator until the group coordinator answers: the first one asks the controller
 * for __consumer_offsets (COORDINATOR_NOT_AVAILABLE meanwhile, as Kafka answers). */
static void await_coordinator(rn_broker_t *b) {
    cli_t c;
    cli_open(&c, rn_broker_port(b));
    int16_t err = -1;
    for (int tries = 0; tries < 500 && err != 0; tries++) {
        rn_FindCoordinatorRequest_t *rq = new_req(&c, RN_API_FIND_COORDINATOR);
        rq->Key = RN_STR_LIT("g");
        rn_FindCoordinatorResponse_t *r = call(&c, RN_API_FIND_COORDINATOR, 3, rq);
        err = r->ErrorCode;
        if (err) usleep(10000);
    }
    ASSERT_EQ(err, 0);
    cli_close(&c);
}

/* CreateTopics through the controller (the metadata log), then Metadata until every
 * partition has its leader. */
static void make_topic(rn_broker_t *b, const char *name, int32_t partitions) {
    cli_t c;
    cli_open(&c, rn_broker_port(b));
    rn_CreateTopicsRequest_t *rq = new_req(&c, RN_API_CREATE_TOPICS);
    rn_CreateTopicsRequest_CreatableTopic_t t;
    rn_CreateTopicsRequest_CreatableTopic_init(&t);
    t.Name = (rn_str_t){name, (int32_t)strlen(name)};
    t.NumPartitions = partitions;
    t.ReplicationFactor = 1;
    rq->Topics = &t;
    rq->Topics_count = 1;
    rq->timeoutMs = 5000;
    rn_CreateTopicsResponse_t *resp = call(&c, RN_API_CREATE_TOPICS, 5, rq);
    ASSERT_EQ(resp->Topics_count, 1);
    ASSERT_TRUE(resp->Topics[0].ErrorCode == 0 || resp->Topics[0].ErrorCode == RN_ERR_TOPIC_ALREADY_EXISTS);
    bool led = false;
    for (int tries = 0; tries < 500 && !led; tries++) {
        rn_MetadataRequest_t *mq = new_req(&c, RN_API_METADATA);
        rn_MetadataRequest_MetadataRequestTopic_t mt;
        rn_MetadataRequest_MetadataRequestTopic_init(&mt);
        mt.Name = t.Name;
        mq->Topics = &mt;
        mq->Topics_count = 1;
        rn_MetadataResponse_t *md = call(&c, RN_API_METADATA, 9, mq);
        led = md->Topics_count == 1 && md->Topics[0].ErrorCode == 0 && md->Topics[0].Partitions_count == partitions;
        for (int32_t i = 0; led && i < partitions; i++) led = md->Topics[0].Partitions[i].LeaderId >= 0;
        if (!led) usleep(10000);
    }
    ASSERT_TRUE(led);
    cli_close(&c);
    await_coordinator(b);
}

/* The consumer protocol's subscription: int16 version + ConsumerProtocolSubscription v0. */
static rn_bytes_t subscription(cli_t *c, const char *topic) {
    rn_buf_t b;
    rn_buf_init(&b, 4096);
    rn_ConsumerProtocolSubscription_t s;
    rn_ConsumerProtocolSubscription_init(&s);
    rn_str_t *t = rn_arena_alloc(&c->arena, sizeof(*t));
    *t = rn_str_from_cstr(topic);
    s.Topics = t;
    s.Topics_count = 1;
    s.UserData = (rn_bytes_t){NULL, -1};
    rn_buf_put_i16(&b, 0);
    rn_ConsumerProtocolSubscription_encode(&b, 0, &s);
    uint8_t *p = rn_arena_alloc(&c->arena, b.len);
    memcpy(p, b.data, b.len);
    rn_bytes_t out = {p, (int32_t)b.len};
    rn_buf_free(&b);
    return out;
}

static rn_str_t arena_copy(cli_t *c, rn_str_t s) {
    char *p = rn_arena_strndup(&c->arena, s.ptr ? s.ptr : "", (size_t)(s.len > 0 ? s.len : 0));
    return (rn_str_t){p, s.len > 0 ? s.len : 0};
}

typedef struct {
    int16_t error;
    int32_t generation;
    rn_str_t member_id, leader;
    int32_t nmembers;
    rn_JoinGroupResponse_t *resp;
} joined_t;

static void join_send(cli_t *c, int16_t v, const char *group, rn_str_t member, const char *instance,
                      int32_t session_ms, rn_bytes_t md) {
    rn_JoinGroupRequest_t *rq = new_req(c, RN_API_JOIN_GROUP);
    rq->GroupId = rn_str_from_cstr(group);
    rq->SessionTimeoutMs = session_ms;
    rq->RebalanceTimeoutMs = 10000;
    rq->MemberId = member;
    rq->GroupInstanceId = instance ? rn_str_from_cstr(instance) : RN_STR_NULL;
    rq->ProtocolType = RN_STR_LIT("consumer");
    rn_JoinGroupRequest_JoinGroupRequestProtocol_t *p = rn_arena_alloc(&c->arena, sizeof(*p));
    p->Name = RN_STR_LIT("range");
    p->Metadata = md;
    rq->Protocols = p;
    rq->Protocols_count = 1;
    cli_send(c, RN_API_JOIN_GROUP, v, rq);
}

static joined_t join_recv(cli_t *c, int16_t v, int timeout_ms) {
    rn_JoinGroupResponse_t *r = cli_recv(c, RN_API_JOIN_GROUP, v, timeout_ms);
    joined_t j = {.error = -100};
    if (!r) return j;
    j = (joined_t){r->ErrorCode, r->GenerationId, arena_copy(c, r->MemberId), arena_copy(c, r->Leader),
                   r->Members_count, r};
    return j;
}

/* Joins as a new member (both steps from v4); the answer of the last step. */
static joined_t join_new(cli_t *c, int16_t v, const char *group, const char *instance, int32_t session_ms,
                         rn_bytes_t md) {
    join_send(c, v, group, RN_STR_LIT(""), instance, session_ms, md);
    joined_t j = join_recv(c, v, 10000);
    if (v >= 4 && !instance) {
        ASSERT_EQ(j.error, RN_ERR_MEMBER_ID_REQUIRED);
        ASSERT_TRUE(j.member_id.len > 0);
        join_send(c, v, group, j.member_id, instance, session_ms, md);
        j = join_recv(c, v, 10000);
    }
    return j;
}

static rn_SyncGroupResponse_t *sync_call(cli_t *c, int16_t v, const char *group, int32_t gen, rn_str_t member,
                                         const char *instance, rn_str_t assign_to, const char *assignment) {
    rn_SyncGroupRequest_t *rq = new_req(c, RN_API_SYNC_GROUP);
    rq->GroupId = rn_str_from_cstr(group);
    rq->GenerationId = gen;
    rq->MemberId = member;
    rq->GroupInstanceId = instance ? rn_str_from_cstr(instance) : RN_STR_NULL;
    rq->ProtocolType = RN_STR_LIT("consumer");
    rq->ProtocolName = RN_STR_LIT("range");
    if (assignment) {
        rn_SyncGroupRequest_SyncGroupRequestAssignment_t *a = rn_arena_alloc(&c->arena, sizeof(*a));
        a->MemberId = assign_to;
        a->Assignment = (rn_bytes_t){(const uint8_t *)assignment, (int32_t)strlen(assignment)};
        rq->Assignments = a;
        rq->Assignments_count = 1;
    } else {
        rq->Assignments_count = 0;
    }
    return call(c, RN_API_SYNC_GROUP, v, rq);
}

static int16_t heartbeat(cli_t *c, int16_t v, const char *group, int32_t gen, rn_str_t member, const char *instance) {
    rn_HeartbeatRequest_t *rq = new_req(c, RN_API_HEARTBEAT);
    rq->GroupId = rn_str_from_cstr(group);
    rq->GenerationId = gen;
    rq->MemberId = member;
    rq->GroupInstanceId = instance ? rn_str_from_cstr(instance) : RN_STR_NULL;
    rn_HeartbeatResponse_t *r = call(c, RN_API_HEARTBEAT, v, rq);
    return r->ErrorCode;
}

static rn_OffsetCommitResponse_t *commit(cli_t *c, int16_t v, const char *group, int32_t gen, rn_str_t member,
                                         const char *topic, int32_t partition, int64_t offset, const char *md) {
    rn_OffsetCommitRequest_t *rq = new_req(c, RN_API_OFFSET_COMMIT);
    rq->GroupId = rn_str_from_cstr(group);
    rq->GenerationIdOrMemberEpoch = gen;
    rq->MemberId = member;
    rn_OffsetCommitRequest_OffsetCommitRequestTopic_t *t = rn_arena_alloc(&c->arena, sizeof(*t));
    rn_OffsetCommitRequest_OffsetCommitRequestTopic_init(t);
    t->Name = rn_str_from_cstr(topic);
    rn_OffsetCommitRequest_OffsetCommitRequestPartition_t *p = rn_arena_alloc(&c->arena, sizeof(*p));
    rn_OffsetCommitRequest_OffsetCommitRequestPartition_init(p);
    p->PartitionIndex = partition;
    p->CommittedOffset = offset;
    p->CommittedMetadata = md ? rn_str_from_cstr(md) : RN_STR_NULL;
    t->Partitions = p;
    t->Partitions_count = 1;
    rq->Topics = t;
    rq->Topics_count = 1;
    return call(c, RN_API_OFFSET_COMMIT, v, rq);
}

typedef struct {
    int16_t error;
    int64_t offset;
    rn_str_t metadata;
} fetched_t;

static fetched_t fetch_offset(cli_t *c, int16_t v, const char *group, const char *topic, int32_t partition) {
    rn_OffsetFetchRequest_t *rq = new_req(c, RN_API_OFFSET_FETCH);
    int32_t *idx = rn_arena_alloc(&c->arena, sizeof(int32_t));
    *idx = partition;
    if (v >= 8) {
        rn_OffsetFetchRequest_OffsetFetchRequestGroup_t *g = rn_arena_alloc(&c->arena, sizeof(*g));
        rn_OffsetFetchRequest_OffsetFetchRequestGroup_init(g);
        g->GroupId = rn_str_from_cstr(group);
        rn_OffsetFetchRequest_OffsetFetchRequestTopics_t *t = rn_arena_alloc(&c->arena, sizeof(*t));
        t->Name = rn_str_from_cstr(topic);
        t->PartitionIndexes = idx;
        t->PartitionIndexes_count = 1;
        g->Topics = t;
        g->Topics_count = 1;
        rq->Groups = g;
        rq->Groups_count = 1;
    } else {
        rq->GroupId = rn_str_from_cstr(group);
        rn_OffsetFetchRequest_OffsetFetchRequestTopic_t *t = rn_arena_alloc(&c->arena, sizeof(*t));
        t->Name = rn_str_from_cstr(topic);
        t->PartitionIndexes = idx;
        t->PartitionIndexes_count = 1;
        rq->Topics = t;
        rq->Topics_count = 1;
    }
    rn_OffsetFetchResponse_t *r = call(c, RN_API_OFFSET_FETCH, v, rq);
    fetched_t f = {.error = -100};
    if (v >= 8) {
        ASSERT_EQ(r->Groups_count, 1);
        ASSERT_EQ(r->Groups[0].Topics_count, 1);
        ASSERT_EQ(r->Groups[0].Topics[0].Partitions_count, 1);
        const rn_OffsetFetchResponse_OffsetFetchResponsePartitions_t *p = &r->Groups[0].Topics[0].Partitions[0];
        f = (fetched_t){p->ErrorCode ? p->ErrorCode : r->Groups[0].ErrorCode, p->CommittedOffset, p->Metadata};
    } else {
        ASSERT_EQ(r->Topics_count, 1);
        ASSERT_EQ(r->Topics[0].Partitions_count, 1);
        const rn_OffsetFetchResponse_OffsetFetchResponsePartition_t *p = &r->Topics[0].Partitions[0];
        f = (fetched_t){p->ErrorCode ? p->ErrorCode : r->ErrorCode, p->CommittedOffset, p->Metadata};
    }
    return f;
}

static int16_t leave(cli_t *c, int16_t v, const char *group, rn_str_t member) {
    rn_LeaveGroupRequest_t *rq = new_req(c, RN_API_LEAVE_GROUP);
    rq->GroupId = rn_str_from_cstr(group);
    if (v >= 3) {
        rn_LeaveGroupRequest_MemberIdentity_t *m = rn_arena_alloc(&c->arena, sizeof(*m));
        rn_LeaveGroupRequest_MemberIdentity_init(m);
        m->MemberId = member;
        rq->Members = m;
        rq->Members_count = 1;
    } else {
        rq->MemberId = member;
    }
    rn_LeaveGroupResponse_t *r = call(c, RN_API_LEAVE_GROUP, v, rq);
    if (v >= 3) {
        ASSERT_EQ(r->ErrorCode, 0);
        ASSERT_EQ(r->Members_count, 1);
        return r->Members[0].ErrorCode;
    }
    return r->ErrorCode;
}

static int16_t delete_group(cli_t *c, int16_t v, const char *group) {
    rn_DeleteGroupsRequest_t *rq = new_req(c, RN_API_DELETE_GROUPS);
    rn_str_t *g = rn_arena_alloc(&c->arena, sizeof(*g));
    *g = rn_str_from_cstr(group);
    rq->GroupsNames = g;
    rq->GroupsNames_count = 1;
    rn_DeleteGroupsResponse_t *r = call(c, RN_API_DELETE_GROUPS, v, rq);
    ASSERT_EQ(r->Results_count, 1);
    return r->Results[0].ErrorCode;
}

static rn_DescribeGroupsResponse_DescribedGroup_t *describe(cli_t *c, int16_t v, const char *group) {
    rn_DescribeGroupsRequest_t *rq = new_req(c, RN_API_DESCRIBE_GROUPS);
    rn_str_t *g = rn_arena_alloc(&c->arena, sizeof(*g));
    *g = rn_str_from_cstr(group);
    rq->Groups = g;
    rq->Groups_count = 1;
    rn_DescribeGroupsResponse_t *r = call(c, RN_API_DESCRIBE_GROUPS, v, rq);
    ASSERT_EQ(r->Groups_count, 1);
    return &r->Groups[0];
}

static bool listed(cli_t *c, int16_t v, const char *group, const char *state_filter) {
    rn_ListGroupsRequest_t *rq = new_req(c, RN_API_LIST_GROUPS);
    if (state_filter) {
        rn_str_t *s = rn_arena_alloc(&c->arena, sizeof(*s));
        *s = rn_str_from_cstr(state_filter);
        rq->StatesFilter = s;
        rq->StatesFilter_count = 1;
    }
    rn_ListGroupsResponse_t *r = call(c, RN_API_LIST_GROUPS, v, rq);
    ASSERT_EQ(r->ErrorCode, 0);
    for (int32_t i = 0; i < r->Groups_count; i++)
        if (rn_str_eq_cstr(r->Groups[i].GroupId, group)) {
            ASSERT_TRUE(rn_str_eq_cstr(r->Groups[i].ProtocolType, "consumer"));
            return true;
        }
    return false;
}

static int16_t vmin(int a, int b) { return (int16_t)(a < b ? a : b); }

/* ---- tests -------------------------------------------------------------- */

RN_TEST(wire_every_version) {
    rn_broker_t *b = broker_start(data_dir, NULL, NULL);
    ASSERT_TRUE(b != NULL);
    make_topic(b, "wt", 2);
    cli_t c;
    cli_open(&c, rn_broker_port(b));
    for (int16_t v = 0; v <= 4; v++) {
        rn_FindCoordinatorRequest_t *rq = new_req(&c, RN_API_FIND_COORDINATOR);
        rq->Key = RN_STR_LIT("g");
        rn_str_t *k = rn_arena_alloc(&c.arena, sizeof(*k));
        *k = RN_STR_LIT("g");
        rq->CoordinatorKeys = k;
        rq->CoordinatorKeys_count = 1;
        rn_FindCoordinatorResponse_t *r = call(&c, RN_API_FIND_COORDINATOR, v, rq);
        if (v < 4) {
            ASSERT_EQ(r->ErrorCode, 0);
            ASSERT_EQ(r->NodeId, 1);
            ASSERT_EQ(r->Port, rn_broker_port(b));
        } else {
            ASSERT_EQ(r->Coordinators_count, 1);
            ASSERT_EQ(r->Coordinators[0].ErrorCode, 0);
            ASSERT_EQ(r->Coordinators[0].Port, rn_broker_port(b));
            ASSERT_TRUE(rn_str_eq_cstr(r->Coordinators[0].Key, "g"));
        }
    }
    rn_bytes_t md = subscription(&c, "wt");
    for (int16_t v = 0; v <= 9; v++) {
        char group[16];
        snprintf(group, sizeof(group), "gv%d", v);
        joined_t j = join_new(&c, v, group, NULL, 10000, md);
        ASSERT_EQ(j.error, 0);
        ASSERT_EQ(j.generation, 1);
        ASSERT_TRUE(rn_str_eq(j.member_id, j.leader));
        ASSERT_EQ(j.nmembers, 1);
        ASSERT_EQ(j.resp->Members[0].Metadata.len, md.len);
        ASSERT_MEMEQ(j.resp->Members[0].Metadata.ptr, md.ptr, (size_t)md.len);
        if (v >= 7) ASSERT_TRUE(rn_str_eq_cstr(j.resp->ProtocolType, "consumer"));
        ASSERT_TRUE(rn_str_eq_cstr(j.resp->ProtocolName, "range"));
        int16_t sv = vmin(v, 5);
        rn_SyncGroupResponse_t *s = sync_call(&c, sv, group, 1, j.member_id, NULL, j.member_id, "ASSIGNMENT");
        ASSERT_EQ(s->ErrorCode, 0);
        ASSERT_EQ(s->Assignment.len, 10);
        ASSERT_MEMEQ(s->Assignment.ptr, "ASSIGNMENT", 10);
        ASSERT_EQ(heartbeat(&c, vmin(v, 4), group, 1, j.member_id, NULL), 0);
        int16_t cv = vmin(v, 8);
        rn_OffsetCommitResponse_t *cr = commit(&c, cv, group, cv >= 1 ? 1 : -1, cv >= 1 ? j.member_id : RN_STR_LIT(""),
                                               "wt", 1, 100 + v, "meta");
        ASSERT_EQ(cr->Topics_count, 1);
        /* v0 carries no member: a group with members refuses it, as Kafka does */
        ASSERT_EQ(cr->Topics[0].Partitions[0].ErrorCode, cv == 0 ? RN_ERR_UNKNOWN_MEMBER_ID : 0);
        fetched_t f = fetch_offset(&c, vmin(v, 8), group, "wt", 1);
        ASSERT_EQ(f.error, 0);
        ASSERT_EQ(f.offset, cv == 0 ? -1 : 100 + v);
        if (cv) ASSERT_TRUE(rn_str_eq_cstr(f.metadata, "meta"));
        rn_DescribeGroupsResponse_DescribedGroup_t *d = describe(&c, vmin(v, 5), group);
        ASSERT_EQ(d->ErrorCode, 0);
        ASSERT_TRUE(rn_str_eq_cstr(d->GroupState, "Stable"));
        ASSERT_TRUE(rn_str_eq_cstr(d->ProtocolData, "range"));
        ASSERT_EQ(d->Members_count, 1);
        ASSERT_TRUE(rn_str_eq_cstr(d->Members[0].ClientId, "wire-test"));
        ASSERT_TRUE(rn_str_eq_cstr(d->Members[0].ClientHost, "/127.0.0.1"));
        ASSERT_EQ(d->Members[0].MemberAssignment.len, 10);
        ASSERT_TRUE(listed(&c, vmin(v, 4), group, NULL));
        if (v >= 4) {
            ASSERT_TRUE(listed(&c, 4, group, "stable"));
            ASSERT_FALSE(listed(&c, 4, group, "Empty"));
        }
        ASSERT_EQ(leave(&c, vmin(v, 5), group, j.member_id), 0);
        ASSERT_TRUE(rn_str_eq_cstr(describe(&c, 0, group)->GroupState, "Empty"));
        if (cv == 0) commit(&c, 0, group, -1, RN_STR_LIT(""), "wt", 1, 100, ""); /* now allowed */
        ASSERT_EQ(delete_group(&c, vmin(v, 2), group), 0);
        ASSERT_EQ(fetch_offset(&c, vmin(v, 8), group, "wt", 1).offset, -1);
        ASSERT_TRUE(rn_str_eq_cstr(describe(&c, 0, group)->GroupState, "Dead"));
    }
    cli_close(&c);
    broker_stop(b);
}

RN_TEST(wire_errors) {
    rn_broker_t *b = broker_start(data_dir, "group.max.size", "2");
    ASSERT_TRUE(b != NULL);
    make_topic(b, "et", 1);
    make_topic(b, "other", 1);
    cli_t c;
    cli_open(&c, rn_broker_port(b));
    rn_bytes_t md = subscription(&c, "et");
    /* unknown group: Heartbeat/Sync UNKNOWN_MEMBER_ID, OffsetFetch -1 without error */
    ASSERT_EQ(heartbeat(&c, 3, "nope", 1, RN_STR_LIT("m"), NULL), RN_ERR_UNKNOWN_MEMBER_ID);
    ASSERT_EQ(sync_call(&c, 3, "nope", 1, RN_STR_LIT("m"), NULL, RN_STR_LIT(""), NULL)->ErrorCode,
              RN_ERR_UNKNOWN_MEMBER_ID);
    fetched_t f = fetch_offset(&c, 7, "nope", "et", 0);
    ASSERT_EQ(f.error, 0);
    ASSERT_EQ(f.offset, -1);
    ASSERT_EQ(delete_group(&c, 1, "nope"), RN_ERR_GROUP_ID_NOT_FOUND);
    ASSERT_EQ(heartbeat(&c, 3, "", 1, RN_STR_LIT("m"), NULL), RN_ERR_INVALID_GROUP_ID);
    /* a commit with a generation to a group that does not exist */
    ASSERT_EQ(commit(&c, 7, "nope", 3, RN_STR_LIT("m"), "et", 0, 1, NULL)->Topics[0].Partitions[0].ErrorCode,
              RN_ERR_ILLEGAL_GENERATION);
    ASSERT_EQ(commit(&c, 7, "nope2", -1, RN_STR_LIT(""), "no-such-topic", 0, 1, NULL)->Topics[0].Partitions[0].ErrorCode,
              RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    ASSERT_EQ(commit(&c, 7, "nope2", -1, RN_STR_LIT(""), "et", 0, 1, big)->Topics[0].Partitions[0].ErrorCode,
              RN_ERR_OFFSET_METADATA_TOO_LARGE);

    /* a Stable group of one */
    joined_t j = join_new(&c, 5, "eg", NULL, 10000, md);
    ASSERT_EQ(j.error, 0);
    ASSERT_EQ(sync_call(&c, 3, "eg", 1, j.member_id, NULL, j.member_id, "A")->ErrorCode, 0);
    ASSERT_EQ(heartbeat(&c, 3, "eg", 7, j.member_id, NULL), RN_ERR_ILLEGAL_GENERATION);
    ASSERT_EQ(heartbeat(&c, 3, "eg", 1, RN_STR_LIT("stale-member"), NULL), RN_ERR_UNKNOWN_MEMBER_ID);
    ASSERT_EQ(sync_call(&c, 3, "eg", 9, j.member_id, NULL, RN_STR_LIT(""), NULL)->ErrorCode, RN_ERR_ILLEGAL_GENERATION);
    ASSERT_EQ(commit(&c, 7, "eg", 9, j.member_id, "et", 0, 5, NULL)->Topics[0].Partitions[0].ErrorCode,
              RN_ERR_ILLEGAL_GENERATION);
    ASSERT_EQ(commit(&c, 7, "eg", 1, RN_STR_LIT("stale"), "et", 0, 5, NULL)->Topics[0].Partitions[0].ErrorCode,
              RN_ERR_UNKNOWN_MEMBER_ID);
    ASSERT_EQ(delete_group(&c, 1, "eg"), RN_ERR_NON_EMPTY_GROUP);
    ASSERT_EQ(leave(&c, 1, "eg", RN_STR_LIT("stale")), RN_ERR_UNKNOWN_MEMBER_ID);
    /* SyncGroup v5 with a different protocol name */
    {
        rn_SyncGroupRequest_t *rq = new_req(&c, RN_API_SYNC_GROUP);
        rq->GroupId = RN_STR_LIT("eg");
        rq->GenerationId = 1;
        rq->MemberId = j.member_id;
        rq->ProtocolType = RN_STR_LIT("consumer");
        rq->ProtocolName = RN_STR_LIT("roundrobin");
        rq->Assignments_count = 0;
        rn_SyncGroupResponse_t *r = call(&c, RN_API_SYNC_GROUP, 5, rq);
        ASSERT_EQ(r->ErrorCode, RN_ERR_INCONSISTENT_GROUP_PROTOCOL);
    }
    /* JoinGroup errors */
    join_send(&c, 5, "", RN_STR_LIT(""), NULL, 10000, md);
    ASSERT_EQ(join_recv(&c, 5, 5000).error, RN_ERR_INVALID_GROUP_ID);
    join_send(&c, 5, "eg", RN_STR_LIT(""), NULL, 10, md);
    ASSERT_EQ(join_recv(&c, 5, 5000).error, RN_ERR_INVALID_SESSION_TIMEOUT);
    join_send(&c, 5, "eg", RN_STR_LIT("who-is-this"), NULL, 10000, md);
    ASSERT_EQ(join_recv(&c, 5, 5000).error, RN_ERR_UNKNOWN_MEMBER_ID);
    join_send(&c, 5, "nogroup", RN_STR_LIT("who-is-this"), NULL, 10000, md);
    ASSERT_EQ(join_recv(&c, 5, 5000).error, RN_ERR_UNKNOWN_MEMBER_ID);
    {
        rn_JoinGroupRequest_t *rq = new_req(&c, RN_API_JOIN_GROUP);
        rq->GroupId = RN_STR_LIT("eg");
        rq->SessionTimeoutMs = 10000;
        rq->RebalanceTimeoutMs = 10000;
        rq->MemberId = RN_STR_LIT("");
        rq->ProtocolType = RN_STR_LIT("connect");
        rn_JoinGroupRequest_JoinGroupRequestProtocol_t *p = rn_arena_alloc(&c.arena, sizeof(*p));
        p->Name = RN_STR_LIT("range");
        p->Metadata = md;
        rq->Protocols = p;
        rq->Protocols_count = 1;
        rn_JoinGroupResponse_t *r = call(&c, RN_API_JOIN_GROUP, 2, rq);
        ASSERT_EQ(r->ErrorCode, RN_ERR_INCONSISTENT_GROUP_PROTOCOL);
    }
    /* OffsetDelete: subscribed topic refused, other topic deleted */
    ASSERT_EQ(commit(&c, 7, "eg", 1, j.member_id, "et", 0, 5, NULL)->Topics[0].Partitions[0].ErrorCode, 0);
    ASSERT_EQ(commit(&c, 7, "eg", 1, j.member_id, "other", 0, 6, NULL)->Topics[0].Partitions[0].ErrorCode, 0);
    {
        rn_OffsetDeleteRequest_t *rq = new_req(&c, RN_API_OFFSET_DELETE);
        rq->GroupId = RN_STR_LIT("eg");
        rn_OffsetDeleteRequest_OffsetDeleteRequestTopic_t *t = rn_arena_alloc(&c.arena, 2 * sizeof(*t));
        rn_OffsetDeleteRequest_OffsetDeleteRequestPartition_t *p = rn_arena_alloc(&c.arena, sizeof(*p));
        p->PartitionIndex = 0;
        t[0].Name = RN_STR_LIT("et");
        t[0].Partitions = p;
        t[0].Partitions_count = 1;
        t[1].Name = RN_STR_LIT("other");
        t[1].Partitions = p;
        t[1].Partitions_count = 1;
        rq->Topics = t;
        rq->Topics_count = 2;
        rn_OffsetDeleteResponse_t *r = call(&c, RN_API_OFFSET_DELETE, 0, rq);
        ASSERT_EQ(r->ErrorCode, 0);
        ASSERT_EQ(r->Topics_count, 2);
        ASSERT_EQ(r->Topics[0].Partitions[0].ErrorCode, RN_ERR_GROUP_SUBSCRIBED_TO_TOPIC);
        ASSERT_EQ(r->Topics[1].Partitions[0].ErrorCode, 0);
        rq->GroupId = RN_STR_LIT("nope");
        r = call(&c, RN_API_OFFSET_DELETE, 0, rq);
        ASSERT_EQ(r->ErrorCode, RN_ERR_GROUP_ID_NOT_FOUND);
    }
    ASSERT_EQ(fetch_offset(&c, 7, "eg", "et", 0).offset, 5);
    ASSERT_EQ(fetch_offset(&c, 7, "eg", "other", 0).offset, -1);

    /* static members: a new incarnation fences the old one */
    joined_t s1 = join_new(&c, 5, "sg", "inst-1", 10000, md);
    ASSERT_EQ(s1.error, 0);
    ASSERT_EQ(sync_call(&c, 3, "sg", 1, s1.member_id, "inst-1", s1.member_id, "S")->ErrorCode, 0);
    joined_t s2 = join_new(&c, 5, "sg", "inst-1", 10000, md);
    ASSERT_EQ(s2.error, 0);
    ASSERT_EQ(s2.generation, 1); /* no rebalance */
    ASSERT_FALSE(rn_str_eq(s1.member_id, s2.member_id));
    ASSERT_EQ(heartbeat(&c, 3, "sg", 1, s1.member_id, "inst-1"), RN_ERR_FENCED_INSTANCE_ID);
    ASSERT_EQ(heartbeat(&c, 3, "sg", 1, s2.member_id, "inst-1"), 0);
    rn_SyncGroupResponse_t *ss = sync_call(&c, 3, "sg", 1, s2.member_id, "inst-1", RN_STR_LIT(""), NULL);
    ASSERT_EQ(ss->ErrorCode, 0);
    ASSERT_EQ(ss->Assignment.len, 1); /* the assignment it had */

    /* group.max.size = 2: the third member is refused */
    cli_t c2, c3;
    cli_open(&c2, rn_broker_port(b));
    cli_open(&c3, rn_broker_port(b));
    joined_t m1 = join_new(&c, 4, "full", NULL, 10000, md);
    ASSERT_EQ(m1.error, 0);
    ASSERT_EQ(sync_call(&c, 3, "full", 1, m1.member_id, NULL, m1.member_id, "x")->ErrorCode, 0);
    join_send(&c2, 4, "full", RN_STR_LIT(""), NULL, 10000, md);
    joined_t m2 = join_recv(&c2, 4, 5000);
    ASSERT_EQ(m2.error, RN_ERR_MEMBER_ID_REQUIRED);
    join_send(&c2, 4, "full", m2.member_id, NULL, 10000, md); /* parks: a rebalance starts */
    usleep(200 * 1000); /* another connection: let it arrive first */
    ASSERT_EQ(heartbeat(&c, 3, "full", 1, m1.member_id, NULL), RN_ERR_REBALANCE_IN_PROGRESS);
    /* (a MEMBER_ID_REQUIRED handed out now would hold the join phase until that
     * pending member's session ends, as in Kafka) */
    /* the old member rejoins on its own connection: the parked join on c2 completes */
    join_send(&c, 4, "full", m1.member_id, NULL, 10000, md);
    joined_t r1 = join_recv(&c, 4, 5000);
    joined_t r2 = join_recv(&c2, 4, 5000);
    ASSERT_EQ(r1.error, 0);
    ASSERT_EQ(r2.error, 0);
    ASSERT_EQ(r1.generation, 2);
    ASSERT_EQ(r2.generation, 2);
    ASSERT_EQ(r1.nmembers + r2.nmembers, 2); /* only the leader gets the member list */
    join_send(&c3, 2, "full", RN_STR_LIT(""), NULL, 10000, md);
    ASSERT_EQ(join_recv(&c3, 2, 5000).error, RN_ERR_GROUP_MAX_SIZE_REACHED);
    /* a sync parked by a follower is answered REBALANCE_IN_PROGRESS when the leader leaves */
    joined_t follower = rn_str_eq(r1.member_id, r1.leader) ? r2 : r1;
    joined_t leader = rn_str_eq(r1.member_id, r1.leader) ? r1 : r2;
    cli_t *fc = rn_str_eq(r1.member_id, r1.leader) ? &c2 : &c;
    cli_t *lc = fc == &c ? &c2 : &c;
    rn_SyncGroupRequest_t *srq = new_req(fc, RN_API_SYNC_GROUP);
    srq->GroupId = RN_STR_LIT("full");
    srq->GenerationId = 2;
    srq->MemberId = follower.member_id;
    srq->Assignments_count = 0;
    cli_send(fc, RN_API_SYNC_GROUP, 3, srq);
    ASSERT_TRUE(cli_recv(fc, RN_API_SYNC_GROUP, 3, 200) == NULL); /* waits for the leader */
    ASSERT_EQ(leave(lc, 3, "full", leader.member_id), 0);
    rn_SyncGroupResponse_t *sr = cli_recv(fc, RN_API_SYNC_GROUP, 3, 5000);
    ASSERT_TRUE(sr != NULL);
    ASSERT_EQ(sr->ErrorCode, RN_ERR_REBALANCE_IN_PROGRESS);
    cli_close(&c3);
    cli_close(&c2);
    cli_close(&c);
    broker_stop(b);
}

RN_TEST(wire_session_timeout_and_parked_join_at_shutdown) {
    rn_broker_t *b = broker_start(data_dir, NULL, NULL);
    ASSERT_TRUE(b != NULL);
    make_topic(b, "st", 1);
    cli_t c, c2;
    cli_open(&c, rn_broker_port(b));
    cli_open(&c2, rn_broker_port(b));
    rn_bytes_t md = subscription(&c, "st");
    joined_t j = join_new(&c, 5, "sess", NULL, 300, md);
    ASSERT_EQ(j.error, 0);
    ASSERT_EQ(sync_call(&c, 3, "sess", 1, j.member_id, NULL, j.member_id, "A")->ErrorCode, 0);
    ASSERT_EQ(heartbeat(&c, 3, "sess", 1, j.member_id, NULL), 0);
    usleep(800 * 1000); /* silent past the 300 ms session: the timer thread removes it */
    ASSERT_EQ(heartbeat(&c, 3, "sess", 1, j.member_id, NULL), RN_ERR_UNKNOWN_MEMBER_ID);
    ASSERT_TRUE(rn_str_eq_cstr(describe(&c, 5, "sess")->GroupState, "Empty"));
    /* a join left parked when the broker stops is completed (dropped) by the shutdown */
    joined_t a = join_new(&c, 5, "park", NULL, 10000, md);
    ASSERT_EQ(a.error, 0);
    join_send(&c2, 2, "park", RN_STR_LIT(""), NULL, 10000, md);
    usleep(100 * 1000);
    cli_close(&c2);
    cli_close(&c);
    broker_stop(b); /* ASan: nothing leaks */
}

RN_TEST(wire_restart_restores_groups_and_offsets) {
    rn_broker_t *b = broker_start(data_dir, NULL, NULL);
    ASSERT_TRUE(b != NULL);
    make_topic(b, "rt", 2);
    cli_t c;
    cli_open(&c, rn_broker_port(b));
    rn_bytes_t md = subscription(&c, "rt");
    joined_t j = join_new(&c, 5, "rg", NULL, 30000, md);
    ASSERT_EQ(j.error, 0);
    ASSERT_EQ(sync_call(&c, 3, "rg", 1, j.member_id, NULL, j.member_id, "RA")->ErrorCode, 0);
    ASSERT_EQ(commit(&c, 7, "rg", 1, j.member_id, "rt", 1, 77, "kept")->Topics[0].Partitions[0].ErrorCode, 0);
    ASSERT_EQ(commit(&c, 2, "solo", -1, RN_STR_LIT(""), "rt", 0, 5, "x")->Topics[0].Partitions[0].ErrorCode, 0);
    ASSERT_EQ(commit(&c, 2, "solo", -1, RN_STR_LIT(""), "rt", 0, 6, "y")->Topics[0].Partitions[0].ErrorCode, 0);
    ASSERT_EQ(commit(&c, 2, "gone", -1, RN_STR_LIT(""), "rt", 0, 1, "")->Topics[0].Partitions[0].ErrorCode, 0);
    ASSERT_EQ(delete_group(&c, 1, "gone"), 0);
    char member_buf[320];
    snprintf(member_buf, sizeof(member_buf), "%.*s", j.member_id.len, j.member_id.ptr);
    cli_close(&c);
    broker_stop(b);

    b = broker_start(data_dir, NULL, NULL);
    ASSERT_TRUE(b != NULL);
    await_coordinator(b);
    cli_open(&c, rn_broker_port(b));
    rn_str_t member = rn_str_from_cstr(member_buf);
    fetched_t f = fetch_offset(&c, 7, "rg", "rt", 1);
    ASSERT_EQ(f.offset, 77);
    ASSERT_TRUE(rn_str_eq_cstr(f.metadata, "kept"));
    f = fetch_offset(&c, 1, "solo", "rt", 0);
    ASSERT_EQ(f.offset, 6);
    ASSERT_TRUE(rn_str_eq_cstr(f.metadata, "y"));
    ASSERT_EQ(fetch_offset(&c, 7, "gone", "rt", 0).offset, -1);
    /* the member carries on in its generation: no rejoin needed */
    ASSERT_EQ(heartbeat(&c, 3, "rg", 1, member, NULL), 0);
    rn_SyncGroupResponse_t *s = sync_call(&c, 3, "rg", 1, member, NULL, RN_STR_LIT(""), NULL);
    ASSERT_EQ(s->ErrorCode, 0);
    ASSERT_EQ(s->Assignment.len, 2);
    ASSERT_MEMEQ(s->Assignment.ptr, "RA", 2);
    rn_DescribeGroupsResponse_DescribedGroup_t *d = describe(&c, 5, "rg");
    ASSERT_TRUE(rn_str_eq_cstr(d->GroupState, "Stable"));
    ASSERT_EQ(d->Members_count, 1);
    ASSERT_FALSE(listed(&c, 4, "gone", NULL));
    cli_close(&c);
    broker_stop(b);
}

int main(void) {
    rn_log_set_level(RN_LOG_WARN);
    data_dir = mkdtemp(dir_template);
    if (!data_dir) return 1;
    int rc = rn_test_main();
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", data_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", data_dir);
    return rc;
}
