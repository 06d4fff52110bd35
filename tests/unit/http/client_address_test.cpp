// TRUSTED_PROXIES: networks and the client address taken from forwarding headers.
#include "http/client_address.h"

#include <gtest/gtest.h>

namespace songd::http {
namespace {

std::vector<core::IpNetwork> Nets(std::initializer_list<const char*> list) {
    std::vector<core::IpNetwork> out;
    for (const char* s : list) {
        auto net = core::ParseIpNetwork(s);
        EXPECT_TRUE(net) << s;
        if (net) out.push_back(*net);
    }
    return out;
}

TEST(IpNetwork, ParsesAddressesAndCidrOfBothFamilies) {
    for (const char* good : {"10.0.0.0/8", "192.168.1.7", "0.0.0.0/0", "::1", "fd00::/8",
                             "2001:db8::/32", "::/0", " 10.1.2.3/32 "}) {
        EXPECT_TRUE(core::ParseIpNetwork(good)) << good;
    }
    for (const char* bad : {"10.0.0.0/33", "10.0.0.0/-1", "fd00::/129", "10.0.0/8", "proxy",
                            "10.0.0.0/", "10.0.0.0/8/8", "", "1.2.3.4.5", "10.0.0.0/x"}) {
        EXPECT_FALSE(core::ParseIpNetwork(bad)) << bad;
    }
}

TEST(IpNetwork, ContainsComparesThePrefixOnlyAndMapsIpv4InIpv6) {
    auto net = *core::ParseIpNetwork("10.1.2.3/8");  // host bits ignored
    EXPECT_TRUE(net.Contains("10.200.0.1"));
    EXPECT_TRUE(net.Contains("::ffff:10.0.0.1"));
    EXPECT_FALSE(net.Contains("11.0.0.1"));
    EXPECT_FALSE(net.Contains("10.0.0.0/8"));
    EXPECT_FALSE(net.Contains("garbage"));
    auto v6 = *core::ParseIpNetwork("2001:db8::/32");
    EXPECT_TRUE(v6.Contains("2001:db8:ffff::1"));
    EXPECT_FALSE(v6.Contains("2001:db9::1"));
    EXPECT_FALSE(v6.Contains("10.0.0.1"));
    EXPECT_TRUE(core::ParseIpNetwork("0.0.0.0/0")->Contains("203.0.113.5"));
    EXPECT_FALSE(core::ParseIpNetwork("0.0.0.0/0")->Contains("2001:db8::1"));
}

TEST(ClientAddress, TableDriven) {
    const auto trusted = Nets({"10.0.0.0/8", "fd00::/8"});
    struct Case {
        const char* peer;
        HeaderList headers;
        const char* client;
    } cases[] = {
        // Untrusted peers: headers never believed.
        {"203.0.113.9", {{"X-Forwarded-For", "1.1.1.1"}}, "203.0.113.9"},
        {"203.0.113.9", {{"Forwarded", "for=1.1.1.1"}}, "203.0.113.9"},
        // Trusted peer: the right-most untrusted hop.
        {"10.0.0.5", {{"X-Forwarded-For", "198.51.100.7"}}, "198.51.100.7"},
        {"10.0.0.5", {{"X-Forwarded-For", "6.6.6.6, 198.51.100.7"}}, "198.51.100.7"},
        {"10.0.0.5", {{"X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.9.9.9"}}, "198.51.100.7"},
        {"10.0.0.5",
         {{"x-forwarded-for", "6.6.6.6"}, {"X-Forwarded-For", "198.51.100.7"}},
         "198.51.100.7"},
        {"fd00::1", {{"X-Forwarded-For", "2001:db8::9"}}, "2001:db8::9"},
        {"::ffff:10.0.0.5", {{"X-Forwarded-For", "198.51.100.7"}}, "198.51.100.7"},
        // Every hop trusted: the left-most.
        {"10.0.0.5", {{"X-Forwarded-For", "10.1.1.1, 10.2.2.2"}}, "10.1.1.1"},
        // Garbage at the right: nothing further left is believed.
        {"10.0.0.5", {{"X-Forwarded-For", "198.51.100.7, unknown"}}, "10.0.0.5"},
        {"10.0.0.5", {{"X-Forwarded-For", "198.51.100.7, 10.2.2.2, x"}}, "10.0.0.5"},
        {"10.0.0.5", {{"X-Forwarded-For", "198.51.100.7, _hidden, 10.2.2.2"}}, "10.2.2.2"},
        // Forwarded, only without X-Forwarded-For.
        {"10.0.0.5", {{"Forwarded", "for=198.51.100.7;proto=https"}}, "198.51.100.7"},
        {"10.0.0.5", {{"Forwarded", "for=6.6.6.6, for=\"[2001:db8::9]:443\""}}, "2001:db8::9"},
        {"10.0.0.5", {{"Forwarded", "For=198.51.100.7:8080"}}, "198.51.100.7"},
        {"10.0.0.5",
         {{"Forwarded", "for=6.6.6.6"}, {"X-Forwarded-For", "198.51.100.7"}},
         "198.51.100.7"},
        // No header: the proxy itself.
        {"10.0.0.5", {}, "10.0.0.5"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.peer) + " " +
                     (c.headers.empty() ? "" : c.headers.back().second));
        EXPECT_EQ(ClientAddress(c.peer, c.headers, trusted), c.client);
    }
    EXPECT_EQ(ClientAddress("10.0.0.5", {{"X-Forwarded-For", "1.1.1.1"}}, {}), "10.0.0.5");
}

}  // namespace
}  // namespace songd::http
