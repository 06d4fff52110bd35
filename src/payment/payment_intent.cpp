#include "payment/payment_intent.h"

#include <boost/json.hpp>
#include <stdexcept>

namespace songd::payment {
namespace {

namespace json = boost::json;

const json::value& Member(const json::object& object, std::string_view name) {
    const json::value* value = object.if_contains(name);
    if (value == nullptr) {
        throw std::invalid_argument("PaymentIntent has no \"" + std::string(name) + "\"");
    }
    return *value;
}

std::string StringMember(const json::object& object, std::string_view name) {
    const json::value& value = Member(object, name);
    if (!value.is_string()) {
        throw std::invalid_argument("PaymentIntent \"" + std::string(name) + "\" is not a string");
    }
    return std::string(value.get_string());
}

int64_t IntMember(const json::object& object, std::string_view name) {
    const json::value* value = object.if_contains(name);
    // Stripe omits nothing here, but null amount_received shows up on fresh intents in
    // older API versions: treat null as zero received.
    if (value == nullptr || value->is_null()) return 0;
    if (value->is_int64()) return value->get_int64();
    if (value->is_uint64() && value->get_uint64() <= INT64_MAX) {
        return static_cast<int64_t>(value->get_uint64());
    }
    throw std::invalid_argument("PaymentIntent \"" + std::string(name) + "\" is not an integer");
}

}  // namespace

PaymentIntent PaymentIntentFromJson(const json::value& value) {
    if (!value.is_object()) throw std::invalid_argument("PaymentIntent is not a JSON object");
    const json::object& object = value.get_object();
    if (const auto* kind = object.if_contains("object");
        kind != nullptr && !(kind->is_string() && kind->get_string() == "payment_intent")) {
        throw std::invalid_argument("object is not a payment_intent");
    }
    PaymentIntent intent;
    intent.id = StringMember(object, "id");
    intent.status = StringMember(object, "status");
    intent.amount = IntMember(object, "amount");
    intent.amount_received = IntMember(object, "amount_received");
    intent.currency = StringMember(object, "currency");
    if (const auto* secret = object.if_contains("client_secret"); secret && secret->is_string()) {
        intent.client_secret = std::string(secret->get_string());
    }
    const json::value& livemode = Member(object, "livemode");
    if (!livemode.is_bool())
        throw std::invalid_argument("PaymentIntent \"livemode\" is not a bool");
    intent.livemode = livemode.get_bool();
    if (const auto* metadata = object.if_contains("metadata"); metadata && metadata->is_object()) {
        if (const auto* job = metadata->get_object().if_contains("job_id");
            job && job->is_string()) {
            intent.metadata_job_id = std::string(job->get_string());
        }
    }
    return intent;
}

PaymentIntent ParsePaymentIntent(std::string_view text) {
    boost::system::error_code ec;
    json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
    if (ec) throw std::invalid_argument("PaymentIntent is not valid JSON");
    return PaymentIntentFromJson(value);
}

bool IsPaymentIntentId(std::string_view text) {
    if (text.size() < 4 || text.size() > 255 || text.substr(0, 3) != "pi_") return false;
    for (char c : text.substr(3)) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

}  // namespace songd::payment
