// One request/reply round trip through nats-server, as the cluster's
// partitions make it (cluster/asker.cc), without loanledger's work around it:
// the yardstick for issue 13's "single-node goals plus one loopback round
// trip" (bench/partition_latency.py runs it beside the report queries).
//
//   nats-rtt --requester nats://127.0.0.1:A --responder nats://127.0.0.1:B
//            [--seconds 15] [--interval-ms 2] [--reply-bytes 512]
//
// The responder's connection answers every request on a subject of its own
// from libnats's delivery thread; the requester's sends one request every
// interval and waits for its reply. Both connections send at once
// (natsOptions_SetSendAsap), as loanledgerd's do. Measures for --seconds or
// until SIGTERM/SIGINT, whichever comes first (partition_latency.py
// --under-load stops it when the submission ends), then prints
// "nats_rtt_ms p50=... p99=... max=... requests=N" (milliseconds). Not a test.
#include <nats/nats.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);  // set from a signal handler

void OnStopSignal(int) { g_stop.store(true); }

struct ConnDeleter {
  void operator()(natsConnection* c) const { natsConnection_Destroy(c); }
};
struct SubDeleter {
  void operator()(natsSubscription* s) const { natsSubscription_Destroy(s); }
};
struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using Conn = std::unique_ptr<natsConnection, ConnDeleter>;

Conn Connect(const std::string& url) {
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, url.c_str());
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
  if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    std::fprintf(stderr, "nats-rtt: cannot connect to %s: %s\n", url.c_str(),
                 natsStatus_GetText(s));
    return nullptr;
  }
  return Conn(nc);
}

struct Responder {
  std::string reply;
};

void OnRequest(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
  const auto* r = static_cast<const Responder*>(closure);
  if (const char* to = natsMsg_GetReply(msg); to != nullptr) {
    natsConnection_Publish(nc, to, r->reply.data(), static_cast<int>(r->reply.size()));
  }
  natsMsg_Destroy(msg);
}

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Request/reply round trips through nats-server (bench/partition_latency.py)"};
  std::string requester_url;
  std::string responder_url;
  double seconds = 15;
  int interval_ms = 2;
  size_t reply_bytes = 512;
  app.add_option("--requester", requester_url, "the requester's NATS server (nats://HOST:PORT)")
      ->required();
  app.add_option("--responder", responder_url, "the responder's NATS server")->required();
  app.add_option("--seconds", seconds, "how long to measure")->check(CLI::PositiveNumber);
  app.add_option("--interval-ms", interval_ms, "between requests")->check(CLI::Range(0, 60000));
  app.add_option("--reply-bytes", reply_bytes, "the reply's size")->check(CLI::Range(0, 1 << 20));
  CLI11_PARSE(app, argc, argv);
  struct sigaction stop = {};
  stop.sa_handler = OnStopSignal;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);

  Conn responder_nc = Connect(responder_url);
  Conn requester_nc = Connect(requester_url);
  if (!responder_nc || !requester_nc) return 1;
  Responder responder{std::string(reply_bytes, 'r')};
  const std::string subject = "loanledger.bench.rtt." + std::to_string(::getpid());
  natsSubscription* raw_sub = nullptr;
  natsStatus s = natsConnection_Subscribe(&raw_sub, responder_nc.get(), subject.c_str(), &OnRequest,
                                          &responder);
  if (s == NATS_OK) s = natsConnection_Flush(responder_nc.get());
  if (s != NATS_OK) {
    std::fprintf(stderr, "nats-rtt: subscribe: %s\n", natsStatus_GetText(s));
    return 1;
  }
  std::unique_ptr<natsSubscription, SubDeleter> sub(raw_sub);

  // The subscription's interest reaches the requester's server over the
  // route shortly after the flush: wait until a request is answered.
  const auto ready_by = Clock::now() + std::chrono::seconds(10);
  while (true) {
    natsMsg* reply = nullptr;
    s = natsConnection_RequestString(&reply, requester_nc.get(), subject.c_str(), "q", 200);
    natsMsg_Destroy(reply);
    if (s == NATS_OK) break;
    if (Clock::now() > ready_by) {
      std::fprintf(stderr, "nats-rtt: no reply within 10 s: %s\n", natsStatus_GetText(s));
      return 1;
    }
  }

  std::vector<double> ms;
  int failures = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end && !g_stop.load()) {
    natsMsg* raw_reply = nullptr;
    const auto t0 = Clock::now();
    s = natsConnection_RequestString(&raw_reply, requester_nc.get(), subject.c_str(), "question",
                                     1000);
    const auto t1 = Clock::now();
    std::unique_ptr<natsMsg, MsgDeleter> reply(raw_reply);
    if (s == NATS_OK) {
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    } else {
      ++failures;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  std::sort(ms.begin(), ms.end());
  std::printf("nats_rtt_ms p50=%.3f p99=%.3f max=%.3f requests=%zu failures=%d\n",
              Quantile(ms, 0.5), Quantile(ms, 0.99), ms.empty() ? 0.0 : ms.back(), ms.size(),
              failures);
  return failures == 0 ? 0 : 1;
}
