// Client webhooks on two `songd serve` nodes sharing one PostgreSQL outbox: every state change
// is delivered, once, whichever node made it and whichever nodes retried it.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/webhook_receiver.h"
#include "pg_test_support.h"

namespace songd::test {
namespace {

namespace json = boost::json;

TEST(WebhookTwoNodes, EveryChangeIsDeliveredOnceThoughBothNodesDeliverAndRetry) {
    PgTestDatabase db;
    char tmpl[] = "/tmp/songd-shared-XXXXXX";
    const std::filesystem::path shared = ::mkdtemp(tmpl);
    Receiver receiver;
    receiver.Mode(R"({"status": 503})");  // first every attempt fails: both nodes retry
    auto env = [&] {
        return Env{{"DATABASE_URL", db.url()},
                   {"OUTPUT_DIR", shared.string()},
                   {"WORKERS", "1"},
                   {"ENGINE", "tone"},
                   {"TONE_RENDER_MS", "200"},
                   {"WEBHOOK_SECRET", kWebhookSecret},
                   {"WEBHOOK_ALLOW_PRIVATE", "true"},
                   {"WEBHOOK_RETRY_BASE_MS", "100"},
                   {"WEBHOOK_CONCURRENCY", "4"}};
    };
    SongdProcess a(env()), b(env());
    a.Start();
    b.Start();
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) {
        SongdProcess& node = i % 2 ? b : a;
        auto r = Http("POST", node.Url("/api/v1/generate"), {"Content-Type: application/json"},
                      GenerateBody(95, R"(,"webhook_url":")" + receiver.Url() +
                                           R"(","webhook_events_filter":["start","completed"])"));
        ASSERT_EQ(r.status, 202) << r.body;
        ids.push_back(std::string(json::parse(r.body).at("job_id").as_string()));
    }
    for (const auto& id : ids) {
        ASSERT_TRUE(WaitFor([&] { return JobStatusName(a, id) == "completed"; }));
    }
    // Both nodes have tried (and failed) some rows before the receiver recovers.
    ASSERT_TRUE(WaitFor([&] { return receiver.Deliveries().size() >= 24; }));
    receiver.Mode(R"({"status": 200})");
    for (const auto& id : ids) {
        ASSERT_TRUE(WaitFor([&] { return Accepted(receiver, id).size() >= 2; })) << id;
    }
    // Settle: nothing is left to send once both outboxes are empty.
    ASSERT_TRUE(WaitFor([&] {
        return Http("GET", a.Url("/api/v1/metrics")).body.find("\nsongd_webhook_outbox_depth 0") !=
               std::string::npos;
    }));

    std::map<std::string, std::set<std::string>> ids_by_change;  // job/status → webhook ids
    std::map<std::string, int> accepted_by_id;
    for (const auto& d : receiver.Deliveries()) {
        EXPECT_TRUE(d.at("signature_valid").as_bool());
        ids_by_change[BodyField(d, "job_id") + "/" + BodyField(d, "status")].insert(Str(d, "id"));
        if (d.at("answered").is_int64() && d.at("answered").as_int64() == 200) {
            ++accepted_by_id[Str(d, "id")];
        }
    }
    EXPECT_EQ(ids_by_change.size(), 12u) << "6 jobs × (start, completed)";
    for (const auto& [change, webhook_ids] : ids_by_change) {
        ASSERT_EQ(webhook_ids.size(), 1u) << change << " has more than one webhook-id";
        EXPECT_EQ(accepted_by_id[*webhook_ids.begin()], 1) << change << " accepted twice";
    }
    // Both nodes took part: each has failed attempts of its own (the 503 phase).
    for (SongdProcess* node : {&a, &b}) {
        const std::string text = Http("GET", node->Url("/api/v1/metrics")).body;
        const auto at = text.find("\nsongd_webhook_failures_total ");
        ASSERT_NE(at, std::string::npos);
        EXPECT_GT(std::atoll(text.c_str() + at + 30), 0) << node->Url("");
    }
    std::error_code ec;
    std::filesystem::remove_all(shared, ec);
}

}  // namespace
}  // namespace songd::test
