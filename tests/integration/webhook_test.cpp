// Client webhooks against a real receiver (tests/webhook_receiver/receiver.py, which checks
// every signature with Python's own hmac/base64): the events filter, a receiver that is down
// for a while, kill -9 between the change and the delivery, private addresses, a receiver
// that hangs, and bad input on the new generate fields (acceptance 2 of issue 11).
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/webhook_receiver.h"
#include "webhooks/url_policy.h"

namespace songd::test {
namespace {

namespace json = boost::json;

std::string Submit(SongdProcess& s, const std::string& webhook_fields) {
    auto r = Http("POST", s.Url("/api/v1/generate"), {"Content-Type: application/json"},
                  GenerateBody(95, "," + webhook_fields));
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return "";
    return std::string(json::parse(r.body).at("job_id").as_string());
}

int64_t Metric(SongdProcess& s, const std::string& line_prefix) {
    const std::string text = Http("GET", s.Url("/api/v1/metrics")).body;
    const auto at = text.find("\n" + line_prefix + " ");
    if (at == std::string::npos) return -1;
    return std::atoll(text.c_str() + at + line_prefix.size() + 2);
}

Env WebhookEnv(Env extra = {}) {
    Env env = {{"WEBHOOK_SECRET", kWebhookSecret},
               {"WEBHOOK_ALLOW_PRIVATE", "true"},
               {"WEBHOOK_RETRY_BASE_MS", "200"},
               {"WORKERS", "1"}};
    for (auto& [k, v] : extra) env[k] = v;
    return env;
}

double IsoSeconds(const std::string& iso) {  // "2026-12-02T02:22:58.785Z"
    std::tm tm{};
    if (!strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
    const double millis = iso.size() > 20 ? std::atof(iso.c_str() + 19) : 0;  // ".785"
    return static_cast<double>(timegm(&tm)) + millis;
}

TEST(Webhooks, SignedDeliveriesCarryTheStatusDocumentAndFollowTheFilter) {
    Receiver receiver;
    SongdProcess songd(WebhookEnv({{"TONE_RENDER_MS", "4500"}}));
    songd.Start();
    const std::string all =
        Submit(songd, R"("webhook_url":")" + receiver.Url("/all") +
                          R"(","webhook_events_filter":["start","progress","completed"])");
    const std::string terminal =
        Submit(songd, R"("webhook_url":")" + receiver.Url("/default") + R"(")");
    ASSERT_FALSE(all.empty());
    ASSERT_FALSE(terminal.empty());
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, terminal) == "completed"; },
                        std::chrono::seconds(60)));
    ASSERT_TRUE(WaitFor([&] {
        auto a = Accepted(receiver, all);
        auto t = Accepted(receiver, terminal);
        return std::any_of(a.begin(), a.end(),
                           [](const auto& d) { return BodyField(d, "status") == "completed"; }) &&
               !t.empty();
    }));

    std::set<std::string> ids;
    for (const auto& d : receiver.Deliveries()) {
        EXPECT_TRUE(d.at("signature_valid").as_bool()) << json::serialize(d);
        EXPECT_EQ(Str(d, "content_type"), "application/json");
        ids.insert(Str(d, "id"));
    }
    // Deliveries run concurrently, so they may arrive in any order (receivers order by the
    // document, not by arrival): put them in the order of the changes they describe.
    auto a = Accepted(receiver, all);
    std::stable_sort(a.begin(), a.end(), [](const auto& x, const auto& y) {
        auto rank = [](const auto& d) {
            return std::pair(BodyField(d, "status") == "completed",
                             d.at("body").as_object().at("progress").as_int64());
        };
        return rank(x) < rank(y);
    });
    const auto t = Accepted(receiver, terminal);
    EXPECT_EQ(ids.size(), a.size() + t.size()) << "every state change has its own webhook-id";

    // start, some progress (at most one per 2 s of a 4.5 s render), completed.
    ASSERT_GE(a.size(), 3u);
    EXPECT_EQ(BodyField(a.front(), "status"), "processing");
    EXPECT_EQ(BodyField(a.back(), "status"), "completed");
    int64_t last_progress = -1;
    size_t progress_rows = 0;
    for (size_t i = 0; i + 1 < a.size(); ++i) {
        EXPECT_EQ(BodyField(a[i], "status"), "processing");
        const int64_t p = a[i].at("body").as_object().at("progress").as_int64();
        EXPECT_GE(p, last_progress);
        last_progress = p;
        if (i > 0) ++progress_rows;
    }
    EXPECT_GE(progress_rows, 1u);
    EXPECT_LE(progress_rows, 4u);
    for (const auto& d : a) EXPECT_EQ(Str(d, "path"), "/all");
    // The body of completed is the status document, as GET status shows it.
    auto status = json::parse(Http("GET", songd.Url("/api/v1/status/" + all)).body).as_object();
    const auto& body = a.back().at("body").as_object();
    for (const char* key : {"job_id", "status", "completed_at", "download_url", "output_file"}) {
        EXPECT_EQ(json::serialize(body.at(key)), json::serialize(status.at(key))) << key;
    }

    // No filter: the terminal events only; this job only completed.
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(BodyField(t[0], "status"), "completed");
    EXPECT_EQ(Str(t[0], "path"), "/default");
    EXPECT_GE(Metric(songd, "songd_webhook_deliveries_total"), 4);
}

TEST(Webhooks, AReceiverThatIsDownGetsTheDeliveryOnceItIsBack) {
    const int port = FreePort();  // nothing listens here yet
    SongdProcess songd(WebhookEnv());
    songd.Start();
    const std::string id =
        Submit(songd, R"("webhook_url":"http://127.0.0.1:)" + std::to_string(port) + R"(/hook")");
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, id) == "completed"; }));
    // Refused connections are retried (200 ms, 400 ms, ...): wait for two failed attempts.
    ASSERT_TRUE(WaitFor([&] { return Metric(songd, "songd_webhook_failures_total") >= 2; }));
    EXPECT_EQ(Metric(songd, "songd_webhook_deliveries_total"), 0);
    EXPECT_EQ(Metric(songd, "songd_webhook_outbox_depth") >= 0, true);

    Receiver receiver(port);
    ASSERT_TRUE(WaitFor([&] { return !Accepted(receiver, id).empty(); }));
    const auto got = Accepted(receiver, id);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(BodyField(got[0], "status"), "completed");
    EXPECT_TRUE(got[0].at("signature_valid").as_bool());
    EXPECT_EQ(receiver.Deliveries().size(), 1u) << "delivered, so not sent again";
}

TEST(Webhooks, KillNineBetweenTheChangeAndTheDeliveryLosesAndInventsNothing) {
    Receiver receiver;
    receiver.Mode(R"({"status": 503})");  // every attempt fails until the crash
    SongdProcess songd(WebhookEnv());
    songd.Start();
    const std::string id =
        Submit(songd, R"("webhook_url":")" + receiver.Url() +
                          R"(","webhook_events_filter":["start","completed","failed"])");
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, id) == "completed"; }));
    // Both changes were attempted at least twice (the same ids each time), none accepted.
    std::map<std::string, std::set<std::string>> before;  // status in body → ids
    ASSERT_TRUE(WaitFor([&] {
        before.clear();
        std::map<std::string, int> attempts;
        for (auto& d : receiver.Deliveries()) {
            before[BodyField(d, "status")].insert(Str(d, "id"));
            ++attempts[BodyField(d, "status")];
        }
        return attempts["processing"] >= 2 && attempts["completed"] >= 2;
    }));
    songd.Kill();
    receiver.Mode(R"({"status": 200})");
    songd.Start();
    ASSERT_TRUE(WaitFor([&] { return Accepted(receiver, id).size() >= 2; }));

    std::map<std::string, std::set<std::string>> all;  // status → every id seen
    std::map<std::string, std::set<std::string>> accepted;
    for (auto& d : receiver.Deliveries()) {
        EXPECT_TRUE(d.at("signature_valid").as_bool());
        all[BodyField(d, "status")].insert(Str(d, "id"));
        if (d.at("answered").is_int64() && d.at("answered").as_int64() == 200) {
            accepted[BodyField(d, "status")].insert(Str(d, "id"));
        }
    }
    // One id per state change, the same before and after the crash, and both delivered.
    EXPECT_EQ(all.size(), 2u);
    for (const char* status : {"processing", "completed"}) {
        EXPECT_EQ(all[status].size(), 1u) << status;
        EXPECT_EQ(all[status], before[status]) << status;
        EXPECT_EQ(accepted[status], before[status]) << status;
    }
}

TEST(Webhooks, PrivateAddressesAreRefusedUnlessAllowed) {
    Receiver receiver;
    SongdProcess songd({{"WEBHOOK_SECRET", kWebhookSecret}, {"WORKERS", "1"}});
    songd.Start();
    for (const std::string& url :
         {receiver.Url(), std::string("http://localhost:") + std::to_string(receiver.port()),
          std::string("http://[::1]:9/x"), std::string("http://10.0.0.1/x"),
          std::string("http://169.254.169.254/latest/meta-data")}) {
        auto r = Http("POST", songd.Url("/api/v1/generate"), {"Content-Type: application/json"},
                      GenerateBody(95, R"(,"webhook_url":")" + url + R"(")"));
        EXPECT_EQ(r.status, 422) << url << " " << r.body;
        EXPECT_NE(r.body.find("webhook_url"), std::string::npos) << r.body;
        EXPECT_NE(r.body.find("WEBHOOK_ALLOW_PRIVATE"), std::string::npos) << r.body;
    }
    // A name that resolves to loopback passes the submit check (names are not resolved
    // then) and is refused at delivery, on the address actually connected.
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host, nullptr, &hints, &found) != 0 || found == nullptr) {
        GTEST_SKIP() << "this machine's name does not resolve";
    }
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
    const bool loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    ::freeaddrinfo(found);
    if (!loopback) GTEST_SKIP() << host << " does not resolve to a loopback address here";
    const std::string id = Submit(songd, R"("webhook_url":"http://)" + std::string(host) + ":" +
                                             std::to_string(receiver.port()) + R"(/hook")");
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, id) == "completed"; }));
    ASSERT_TRUE(WaitFor(
        [&] { return Metric(songd, "songd_webhook_dropped_total{reason=\"rejected\"}") == 1; }));
    EXPECT_TRUE(receiver.Deliveries().empty()) << "the receiver on 127.0.0.1 was reached";
    EXPECT_NE(songd.Log().find("is not allowed"), std::string::npos);
}

TEST(Webhooks, AHangingReceiverDoesNotDelayAnotherReceiversDeliveries) {
    Receiver hanging;
    Receiver healthy;
    hanging.Mode(R"({"hang": true})");
    // Two delivery threads and a 20 s timeout: without the per-receiver cap both threads
    // would sit on the hanging receiver for 20 s before the healthy one got a turn.
    SongdProcess songd(WebhookEnv({{"WEBHOOK_CONCURRENCY", "2"},
                                   {"WEBHOOK_TIMEOUT_SECONDS", "20"},
                                   {"TONE_RENDER_MS", "300"}}));
    songd.Start();
    std::vector<std::string> stuck;
    for (int i = 0; i < 3; ++i) {
        stuck.push_back(Submit(songd, R"("webhook_url":")" + hanging.Url() +
                                          R"(","webhook_events_filter":["start","completed"])"));
    }
    const std::string id = Submit(songd, R"("webhook_url":")" + healthy.Url() +
                                             R"(","webhook_events_filter":["start","completed"])");
    ASSERT_TRUE(WaitFor([&] { return JobStatusName(songd, id) == "completed"; }));
    ASSERT_TRUE(WaitFor([&] { return Accepted(healthy, id).size() == 2; }));
    const auto got = Accepted(healthy, id);
    const double completed_at = IsoSeconds(BodyField(got.back(), "completed_at"));
    const double received_at = got.back().at("received_at").to_number<double>();
    EXPECT_EQ(BodyField(got.back(), "status"), "completed");
    EXPECT_LT(received_at - completed_at, 5.0)
        << "the healthy receiver waited for the hanging one's timeout";
    EXPECT_FALSE(hanging.Deliveries().empty()) << "the hanging receiver was never tried";
    hanging.Mode(R"({"hang": false})");
}

TEST(Webhooks, BadWebhookFieldsAreRefusedAndCreateNothing) {
    SongdProcess songd(WebhookEnv());
    songd.Start();
    SongdProcess unsigned_songd(Env{{"WORKERS", "1"}});  // no WEBHOOK_SECRET
    unsigned_songd.Start();
    const std::string long_url = "http://example.com/" + std::string(3000, 'a');
    struct Case {
        const char* id;
        std::string fields;
        const char* mentions;
    };
    const Case cases[] = {
        {"W01 url not a string", R"("webhook_url":42)", "webhook_url"},
        {"W02 ftp scheme", R"("webhook_url":"ftp://example.com/x")", "http or https"},
        {"W03 no scheme", R"("webhook_url":"example.com/hook")", "http or https"},
        {"W04 too long", R"("webhook_url":")" + long_url + R"(")", "at most 2048"},
        {"W05 credentials", R"("webhook_url":"https://u:p@example.com/")", "password"},
        {"W06 bad port", R"("webhook_url":"https://example.com:99999/")", "port"},
        {"W07 unknown event",
         R"("webhook_url":"https://example.com/","webhook_events_filter":["done"])",
         "unknown event"},
        {"W08 filter not a list",
         R"("webhook_url":"https://example.com/","webhook_events_filter":"completed")",
         "webhook_events_filter"},
        {"W09 empty filter", R"("webhook_url":"https://example.com/","webhook_events_filter":[])",
         "at least one event"},
        {"W10 filter without url", R"("webhook_events_filter":["completed"])",
         "needs a webhook_url"},
        {"W11 event not a string",
         R"("webhook_url":"https://example.com/","webhook_events_filter":[1])", "unknown event"},
        {"W12 space in url", R"("webhook_url":"https://exa mple.com/")", "without spaces"},
    };
    for (const auto& c : cases) {
        auto r = Http("POST", songd.Url("/api/v1/generate"), {"Content-Type: application/json"},
                      GenerateBody(95, "," + c.fields));
        EXPECT_EQ(r.status, 422) << c.id << ": " << r.body;
        EXPECT_NE(r.body.find(c.mentions), std::string::npos) << c.id << ": " << r.body;
    }
    // A server without WEBHOOK_SECRET cannot sign, so it takes no webhook at all.
    auto r =
        Http("POST", unsigned_songd.Url("/api/v1/generate"), {"Content-Type: application/json"},
             GenerateBody(95, R"(,"webhook_url":"https://example.com/hook")"));
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_NE(r.body.find("WEBHOOK_SECRET"), std::string::npos) << r.body;
    // Nothing was created by any of them.
    for (SongdProcess* s : {&songd, &unsigned_songd}) {
        auto queue = json::parse(Http("GET", s->Url("/api/v1/queue")).body).as_object();
        EXPECT_EQ(queue.at("queue_length").as_int64(), 0);
        EXPECT_EQ(queue.at("processing").as_int64(), 0);
        EXPECT_EQ(Metric(*s, "songd_webhook_outbox_depth"), 0);
    }
}

TEST(Webhooks, ABadWebhookSecretStopsTheStartWithOneLine) {
    for (const std::string& secret :
         {std::string("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), std::string("whsec_not-base64!"),
          std::string("whsec_c2hvcnQ=")}) {
        SongdProcess s({{"WEBHOOK_SECRET", secret}});
        auto [code, out] = s.RunCommand({"serve"}, {{"WEBHOOK_SECRET", secret}});
        EXPECT_NE(code, 0) << secret;
        EXPECT_NE(out.find("WEBHOOK_SECRET=<hidden>"), std::string::npos) << out;
        EXPECT_EQ(out.find(secret), std::string::npos) << "the secret was printed: " << out;
    }
}

}  // namespace
}  // namespace songd::test
